#!/usr/bin/env bash
# ddm plot: PNG line charts of JSONL logs; several logs in one comma-separated --log; user errors are one line.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

mkdir -p $TMP/runA $TMP/runB
for i in 0 1 2 3 4 5 6 7 8 9; do
    printf '{"step":%d,"loss":%d.5,"loss_diff":0.%d,"loss_disp":-0.0%d,"lr":0.0001}\n' $((i * 10)) $((10 - i)) $((9 - i)) $i
done > $TMP/runA/log.jsonl
printf '{"step":0,"loss_diff":0.8}\n\n{"step":10,"loss_diff":0.5}\n{"step":20}\n{"step":30,"loss_diff":null}\n{"step":40,"loss_diff":0.3}\n' > $TMP/runB/log.jsonl

# Width and height from the IHDR chunk; the PNG signature first.
png_info() { $PY -c 'import struct,sys; b=open(sys.argv[1],"rb").read(24); print(b[:8]==b"\x89PNG\r\n\x1a\n", b[12:16]==b"IHDR", *struct.unpack(">II", b[16:24]))' "$1"; }

out=$($DDM plot --log $TMP/runA/log.jsonl,$TMP/runB/log.jsonl --y loss_diff --smooth 3 --out $TMP/c.png --width 640 --height 360 2>&1); rc=$?
check "two logs, smoothed: $out" test $rc -eq 0
check "PNG signature, IHDR and size 640x360: $(png_info $TMP/c.png)" test "$(png_info $TMP/c.png)" = "True True 640 360"
check "reports 2 series" grep -q "2 series" <<< "$out"
check "no temp files left" test -z "$(ls $TMP | grep tmp)"
expect_ok "several fields, log y, title" $DDM plot --log $TMP/runA/log.jsonl --y loss_diff,loss,lr --logy --title "run A" --out $TMP/d.png
check "default size 900x500: $(png_info $TMP/d.png)" test "$(png_info $TMP/d.png)" = "True True 900 500"
expect_ok "x field other than step" $DDM plot --log $TMP/runA/log.jsonl --x loss --y loss_diff --out $TMP/e.png
check "same input, same bytes" bash -c "$DDM plot --log $TMP/runA/log.jsonl,$TMP/runB/log.jsonl --y loss_diff --smooth 3 --out $TMP/c2.png --width 640 --height 360 2>/dev/null && cmp -s $TMP/c.png $TMP/c2.png"

expect_fail "missing file" "cannot open '$TMP/nope/log.jsonl'" $DDM plot --log $TMP/nope/log.jsonl --y loss --out $TMP/bad.png
expect_fail "missing field" "runB/log.jsonl: no line has the field 'loss_dsp' (fields seen: step, loss_diff)" $DDM plot --log $TMP/runB/log.jsonl --y loss_dsp --out $TMP/bad.png
expect_fail "missing field in the second log" "runB/log.jsonl: no line has the field 'loss_disp'" $DDM plot --log $TMP/runA/log.jsonl,$TMP/runB/log.jsonl --y loss_disp --out $TMP/bad.png
expect_fail "missing x field" "no line has the field 'epoch'" $DDM plot --log $TMP/runA/log.jsonl --x epoch --y loss --out $TMP/bad.png
printf '{"step":0,"loss":1}\n{"step":1,"loss":\n' > $TMP/broken.jsonl
expect_fail "malformed line" "broken.jsonl:2: not a JSON object" $DDM plot --log $TMP/broken.jsonl --y loss --out $TMP/bad.png
expect_fail "empty --y item" "bad --y: empty item" $DDM plot --log $TMP/runA/log.jsonl --y loss,,lr --out $TMP/bad.png
expect_fail "field with a space" "bad --y: field name 'lo ss'" $DDM plot --log $TMP/runA/log.jsonl --y "lo ss" --out $TMP/bad.png
expect_fail "no --y" "needs --log, --y and --out" $DDM plot --log $TMP/runA/log.jsonl --out $TMP/bad.png
expect_fail "bad --smooth" "--smooth 0: out of range" $DDM plot --log $TMP/runA/log.jsonl --y loss --smooth 0 --out $TMP/bad.png
check "no file from failed runs" test ! -e $TMP/bad.png
help=$($DDM plot --help); rc=$?
check "--help exits 0" test $rc -eq 0
check "--help lists the flags" grep -q -- "--smooth" <<< "$help"
check "ddm --help lists plot" grep -q "plot" <<< "$($DDM --help)"
finish
