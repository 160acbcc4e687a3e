#!/usr/bin/env bash
# ddm eval's image inputs: .npz archives as numpy writes them (np.savez, np.savez_compressed, uint8 NHWC
# arr_0 as in ADM reference batches, float64, FILE.npz:NAME) give exactly the numbers of the .npy of the
# same images; corrupt or truncated archives, images of another size or channel count than the
# reference data and too few images are one-line errors; fewer images than feature dimensions warn
# (singular covariance) but still compute.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
expect_ok "tiny classifier" $DDM classifier train --epochs 1 --n-train 1000 --n-test 200 --arch 8,M,16 --threads 1 \
    --out $TMP/c.safetensors
$PY - "$TMP" <<'PYEOF'
import gzip, sys, numpy as np
t = sys.argv[1]
raw = gzip.open('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz').read()
u = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[1000:1200]
x = (u.astype(np.float32) / 127.5 - 1)[:, None]
np.save(t + '/x.npy', x)
np.savez(t + '/stored.npz', x)
np.savez_compressed(t + '/compressed.npz', labels=np.arange(len(x)), images=x)
np.savez(t + '/u8.npz', u[..., None], np.arange(len(x)))   # arr_0 uint8 [N, H, W, C], arr_1 labels
np.savez_compressed(t + '/f64.npz', x.astype(np.float64))
np.savez(t + '/rgb.npz', np.repeat(u[..., None], 3, axis=3))
np.savez(t + '/small.npz', x[:, :, :27, :27])
np.savez(t + '/few.npz', x[:10])
b = open(t + '/stored.npz', 'rb').read()
open(t + '/trunc.npz', 'wb').write(b[:len(b) // 2])
bad = bytearray(b); bad[0:4] = b'PK\x00\x00'; open(t + '/sig.npz', 'wb').write(bad)
bad = bytearray(b); bad[len(b) // 2] ^= 0xff; open(t + '/crc.npz', 'wb').write(bad)
np.save(t + '/nan.npy', np.full((200, 1, 28, 28), np.nan, np.float32))
np.save(t + '/empty.npy', np.zeros((0, 1, 28, 28), np.float32))
import os, struct, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
os.makedirs(t + '/bomb', exist_ok=True)   # a header of 16000 x 16000 pixels over 1 KB of image data
open(t + '/bomb/a.png', 'wb').write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16000, 16000, 8, 2, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
c = open(t + '/f64.npz', 'rb').read()
bad = bytearray(c); bad[len(c) // 2] ^= 0xff; open(t + '/deflate.npz', 'wb').write(bad)
PYEOF
EV="$DDM eval --classifier $TMP/c.safetensors --n 200 --kid-subsets 5 --kid-size 100 --threads 1"
expect_ok "eval the .npy" $EV --samples $TMP/x.npy --json $TMP/npy.json
same_numbers() {
    $PY -c "import json, sys; a, b = (json.load(open(f)) for f in sys.argv[1:]); sys.exit(not (a['n'] == b['n'] == 200 and a['samples'] == b['samples'] and a['real_test'] == b['real_test']))" "$1" "$2"
}
for s in stored.npz stored.npz:arr_0 compressed.npz:images compressed.npz:images.npy u8.npz f64.npz; do
    expect_ok "eval $s" $EV --samples "$TMP/$s" --json "$TMP/$s.json"
    check "$s gives the numbers of the .npy" same_numbers $TMP/npy.json "$TMP/$s.json"
done

expect_fail "truncated npz" "trunc.npz: not a .npz (ZIP) archive, or a truncated one" $EV --samples $TMP/trunc.npz
expect_fail "bad signature" "sig.npz:arr_0.npy: corrupt .npz: bad local-file-header signature" $EV --samples $TMP/sig.npz
expect_fail "CRC mismatch" "crc.npz:arr_0.npy: corrupt .npz: CRC-32 mismatch" $EV --samples $TMP/crc.npz
expect_fail "corrupt deflate data" "deflate.npz:arr_0.npy: corrupt" $EV --samples $TMP/deflate.npz
expect_fail "missing member" "no array 'images' (it holds: arr_0)" $EV --samples $TMP/stored.npz:images
expect_fail "default member is not images" "compressed.npz:labels.npy" $EV --samples $TMP/compressed.npz
expect_fail "labels as images" "expected an array of images" $EV --samples $TMP/u8.npz:arr_1
expect_fail "all-NaN images: no score" "nan.npy: image 0 holds nan" $EV --samples $TMP/nan.npy
expect_fail "no images" "empty.npy: an empty image set" $EV --samples $TMP/empty.npy
expect_fail "PNG header larger than its data" "cannot hold them" $EV --samples $TMP/bomb
expect_fail "missing npz" "nowhere.npz" $EV --samples $TMP/nowhere.npz:arr_0
expect_fail "channel count" "images of 3x28x28 (CxHxW), but the reference data" $EV --samples $TMP/rgb.npz
expect_fail "image size" "images of 1x27x27 (CxHxW), but the reference data" $EV --samples $TMP/small.npz
expect_fail "fewer images than k + 1" "precision/recall with --k 10 needs at least 11" $EV --samples $TMP/few.npz --k 10

out=$($EV --samples $TMP/few.npz --json $TMP/few.json 2>&1); rc=$?
check "fewer images than feature dimensions still computes (rc $rc)" test $rc -eq 0 -a -s $TMP/few.json
warn=$(grep "ddm: warning:" <<<"$out")
check "one warning line: $warn" test "$(grep -c . <<<"$warn")" -eq 1
check "the warning explains: $warn" grep -qF "covariance is singular (rank <= N-1 = 9 < 16), so the Frechet distance is dominated by the estimate" <<<"$warn"
check "the warning says what to do: $warn" grep -qF "at least 17 (dim + 1), better >= 160 (10x dim)" <<<"$warn"
check "eval --help names .npz and uint8" grep -q "npz.*uint8 \[N,H,W,C\]" <<<"$($DDM eval --help)"
finish
