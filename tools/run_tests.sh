#!/usr/bin/env bash
# Runs every built C test binary (build/tests/test_*) and the CLI tests (tests/cli/*.sh) twice, once on each
# CPU device (DDM_DEVICE=cpu, then cpu-isolated, whose memory the host cannot read: a leak across the device
# boundary crashes there), then prints one closing line "N passed, N failed" summed over all of them.
# DEVICES="cpu" runs the CLI tests on one device only.
set -u
cd "$(dirname "$0")/.."
pass=0; fail=0; bad=()
run_one() {
    local name=$1; shift
    local out
    out=$("$@" 2>&1); local rc=$?
    echo "$out" | tail -n 40
    local line
    line=$(echo "$out" | grep -Eo '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -n "$line" ]; then
        pass=$((pass + $(echo "$line" | cut -d' ' -f1)))
        fail=$((fail + $(echo "$line" | cut -d' ' -f3)))
    fi
    if [ $rc -ne 0 ]; then bad+=("$name"); [ -z "$line" ] && fail=$((fail + 1)); fi
}
for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    echo "== $t"
    run_one "$t" "$t"
done
for dev in ${DEVICES:-cpu cpu-isolated}; do
    for t in tests/cli/test_*.sh; do
        [ -f "$t" ] || continue
        echo "== $t (DDM_DEVICE=$dev)"
        run_one "$t ($dev)" env DDM_DEVICE="$dev" bash "$t"
    done
done
[ ${#bad[@]} -gt 0 ] && echo "failing: ${bad[*]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ ${#bad[@]} -eq 0 ]
