#!/usr/bin/env bash
# The test suite's representative subset under AddressSanitizer + UndefinedBehaviorSanitizer (float-cast-overflow
# included, every report fatal): `make SANITIZE=1` builds build-asan/, then the fast C unit tests and CLI tests that
# together run every command (train, sample, eval, forward, probe, pca, classifier, data, export, plot, bench, the
# hostile inputs and the fault tests) use build-asan/ddm on the cpu device; then a short training run, its resume,
# a sample and an export under LeakSanitizer, which must exit 0 with no leak. (test_interop, which covers export
# against PyTorch, takes ~3 minutes under ASan: export runs here directly instead.)
# Leak detection is off for the test suite itself: a fatal error exits without freeing, by design (ddm_fatal).
# usage: tests/sanitize/run.sh [CLI test names...]   (default: the subset below)
set -u
cd "$(dirname "$0")/../.."
B=build-asan
t0=$(date +%s)
mkdir -p $B && make -s -j2 SANITIZE=1 $B/ddm > $B/make.log 2>&1 || { tail -30 $B/make.log; echo "sanitize: build failed"; exit 1; }
c_tests=(test_io test_data test_augment test_tfevents test_plot test_api test_dispersive)
for t in "${c_tests[@]}"; do make -s SANITIZE=1 $B/tests/$t >> $B/make.log 2>&1 || { tail -30 $B/make.log; exit 1; }; done
echo "sanitize: built in $(( $(date +%s) - t0 )) s"
cli=("$@")
[ ${#cli[@]} -eq 0 ] && cli=(test_bad_input test_hostile test_config test_faults test_train_sample test_resume test_data
    test_eval_input test_classifier test_probe test_pca test_forward_parity test_plot test_bf16 test_ldae)
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export DDM=./$B/ddm DDM_DEVICE=cpu
fail=0
log=$B/sanitize.log; : > $log
run() {
    local name=$1; shift
    local s=$(date +%s) out rc
    out=$("$@" 2>&1); rc=$?
    echo "$out" >> $log
    local reports; reports=$(echo "$out" | grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error:')
    printf '%-34s rc %-3s %3s s  %s\n' "$name" "$rc" "$(( $(date +%s) - s ))" "$(echo "$out" | grep -Eo '[0-9]+ passed, [0-9]+ failed' | tail -1)"
    if [ $rc -ne 0 ] || [ "$reports" -ne 0 ]; then
        fail=1; echo "$out" | grep -E -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:|FAIL' | head -40
    fi
}
for t in "${c_tests[@]}"; do run "$t" $B/tests/$t; done
for t in "${cli[@]}"; do run "$t" bash tests/cli/$t.sh; done
# LeakSanitizer on a clean run: train (with a periodic evaluation), resume, sample.
tmp=$(mktemp -d /tmp/ddm-lsan.XXXXXX)
TINY="--depth 2 --hidden 32 --heads 2 --patch 7"
ASAN_OPTIONS=detect_leaks=1:exitcode=86 run "LeakSanitizer: train 4 steps" $DDM train $TINY --batch 4 --steps 4 --ckpt-every 2 \
    --disp infonce_l2 --out $tmp/run --threads 2
ASAN_OPTIONS=detect_leaks=1:exitcode=86 run "LeakSanitizer: resume to 6" $DDM train --resume $tmp/run/ckpt.safetensors \
    --steps 6 --out $tmp/run --threads 2
ASAN_OPTIONS=detect_leaks=1:exitcode=86 run "LeakSanitizer: sample" $DDM sample --ckpt $tmp/run/ckpt.safetensors --n 4 \
    --steps 2 --out $tmp/s.png --threads 2
ASAN_OPTIONS=detect_leaks=1:exitcode=86 run "LeakSanitizer: export" $DDM export --ckpt $tmp/run/ckpt.safetensors \
    --out $tmp/w.safetensors --ema
rm -rf "$tmp"
echo "sanitize: $( [ $fail -eq 0 ] && echo clean || echo FAILED ) in $(( $(date +%s) - t0 )) s (log $log)"
exit $fail
