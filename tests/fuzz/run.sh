#!/usr/bin/env bash
# Builds (`make fuzz`) and runs every libFuzzer harness (build-fuzz/fuzz/fuzz_*) for SECONDS each (default 60), from seed
# corpora that tests/fuzz/seeds.py generates (plus a tiny real checkpoint for safetensors when build/ddm exists)
# and the regression inputs of tests/fuzz/regress/. Prints one line per harness: executions, new corpus entries,
# crashes. A crash, sanitizer report, timeout (a hang: -timeout=10 s for one input) or a single allocation of more
# than 2 GiB (-malloc_limit_mb: a declared size allocated before it was checked) leaves its input in
# build-fuzz/artifacts/<harness>/ and makes the script fail. Leak detection is off: a parser's fatal error longjmps
# out of it (tests/fuzz/fuzz.h), leaving what it had allocated (a gzip stream's buffers, a partly read header), so
# the process grows with the number of rejected inputs: about 1 GiB a minute for the IDX harness, whose inputs are
# nearly all rejected gzip streams. The whole-process limit (-rss_limit_mb) is 6 GiB for that reason: enough for a
# few minutes per harness; longer runs take -rss_limit_mb=0 in FUZZ_ARGS, or -fork.
# usage: tests/fuzz/run.sh [SECONDS] [HARNESS...]
set -u
cd "$(dirname "$0")/../.."
secs=${1:-60}; shift || true
B=build-fuzz
mkdir -p $B && make -s -j2 fuzz > $B/make.log 2>&1 || { tail -20 $B/make.log; echo "run.sh: make fuzz failed"; exit 1; }
ckpt=""
if [ -x build/ddm ] && [ ! -f $B/seed-ckpt/ckpt.safetensors ]; then
    build/ddm train --depth 1 --hidden 16 --heads 1 --patch 7 --batch 2 --steps 1 --out $B/seed-ckpt >/dev/null 2>&1
fi
[ -f $B/seed-ckpt/ckpt.safetensors ] && ckpt=$B/seed-ckpt/ckpt.safetensors
rm -rf $B/seeds && ${PYTHON:-/usr/bin/python3} tests/fuzz/seeds.py $B/seeds $ckpt || exit 1
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && for h in $B/fuzz/fuzz_*; do [[ $h == *.d ]] && continue; harnesses+=("$(basename "$h" | sed 's/^fuzz_//')"); done
fail=0
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=0:quarantine_size_mb=32 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for h in "${harnesses[@]}"; do
    mkdir -p $B/corpus/$h $B/artifacts/$h $B/seeds/$h
    regress=(); [ -d tests/fuzz/regress/$h ] && regress=(tests/fuzz/regress/$h)
    log=$B/fuzz-$h.log
    $B/fuzz/fuzz_$h -max_total_time="$secs" -timeout=10 -rss_limit_mb=6144 -malloc_limit_mb=2048 -print_final_stats=1 ${FUZZ_ARGS:-} \
        -artifact_prefix=$B/artifacts/$h/ $B/corpus/$h $B/seeds/$h "${regress[@]}" > "$log" 2>&1
    rc=$?
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$')
    crashes=$(ls $B/artifacts/$h | wc -l)
    printf '%-12s %4ss  %10s executions  %5s corpus  %s crash inputs  (rc %s, log %s)\n' "$h" "$secs" "${runs:-?}" \
        "$(ls $B/corpus/$h | wc -l)" "$crashes" "$rc" "$log"
    if [ $rc -ne 0 ] || [ "$crashes" -ne 0 ]; then fail=1; grep -m5 -E 'ERROR|runtime error|SUMMARY|deadly|ddm: internal' "$log"; fi
done
exit $fail
