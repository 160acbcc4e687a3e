#!/bin/bash
# 1 and 2 MPI ranks against one process (1 and 2 threads) on this machine: docs/distributed.md "Scaling on this
# machine". 200 steps of the demo recipe each, interleaved, ROUNDS times; prints the img/s log lines and wall times.
# Needs `make MPI=1` (build-mpi/ddm) and a quiet machine: ratios between runs are meaningless under other load.
set -euo pipefail
DDM=${DDM:-build-mpi/ddm}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-200}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
run() {   # NAME command...
    local name=$1; shift
    local t0=$(date +%s%N)
    "$@" --config configs/demo.conf --steps "$STEPS" --erank-every 0 --out "$TMP/$name" > "$TMP/$name.txt" 2>&1
    echo "== $name: wall $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    grep "img/s" "$TMP/$name.txt" | tail -3
    rm -rf "$TMP/$name"
}
for round in $(seq "$ROUNDS"); do
    echo "# round $round (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    run 1proc-2threads "$DDM" train --threads 2
    run 2ranks-1thread mpirun --allow-run-as-root -np 2 "$DDM" train --threads 1
    run 1proc-1thread "$DDM" train --threads 1
done
