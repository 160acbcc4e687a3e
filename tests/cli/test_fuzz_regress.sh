#!/usr/bin/env bash
# The fuzz harnesses (tests/fuzz) without libFuzzer: every input kept in tests/fuzz/regress/<harness>/ (each one once
# crashed or hung a parser, or is a hostile case worth keeping) must now give a clean error or load, under the normal
# build. The fuzzing itself (clang, sanitizers) is `make fuzz` + tests/fuzz/run.sh, in CI.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

for r in build/tests/fuzz/replay_*; do
    h=${r##*/replay_}
    [ -d tests/fuzz/regress/$h ] || continue
    expect_ok "regression inputs of $h" timeout 60 $r tests/fuzz/regress/$h
done
check "every harness has a replay binary" test -x build/tests/fuzz/replay_safetensors -a -x build/tests/fuzz/replay_config
finish
