# Shared helpers for the CLI tests: each check counts a pass or a failure; finish prints
# "N passed, N failed" and sets the exit status.
DDM=${DDM:-./build/ddm}
PY=${PY:-/usr/bin/python3}
TINY="--depth 2 --hidden 32 --heads 2 --patch 7"
pass=0; fail=0
TMP=$(mktemp -d /tmp/ddm-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# expect_fail "what" "text the one-line error must contain" cmd...: exit status 1, one "ddm: error:" line.
expect_fail() {
    local what=$1 text=$2; shift 2
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    local lines
    lines=$(echo "$err" | grep -c "ddm: error:")
    if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && echo "$err" | grep -qF -- "$text"; then ok
    else bad "$what: rc=$rc, stderr: $err"; fi
}

expect_ok() {
    local what=$1; shift
    local out
    if out=$("$@" 2>&1); then ok; else bad "$what: $out"; fi
}

check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
check_not() { local what=$1; shift; if "$@"; then bad "$what"; else ok; fi; }

finish() { echo "$(basename "$0"): $pass passed, $fail failed"; [ $fail -eq 0 ]; }
