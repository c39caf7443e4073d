#!/usr/bin/env bash
# One prepared run on a lent GPU machine (issues #15 and #18): the GPU benchmark
# (benchmarks/gpu.py), then fib_v7 (configs/train_fib_v7.yaml) trained for the rest of the time
# budget, with the cosine schedule sized from a measured step rate. Everything it keeps goes to
# $OUT: the benchmark log, the training log, losses.csv and the checkpoints (resumable state; the
# CPU picks among them afterwards by validation NERL through the pipeline on z 70-99).
#
# Prepare first with scripts/gpu_prepare.sh (prepare, trim; restore after). Run from the repository
# root on the GPU machine. The image there has torch, numpy, scipy,
# scikit-image and h5py but not zarr, dask, pydantic, fastremap, cc3d, edt or monai: those travel as
# wheels in .whl/ (see /work/.library/device/README.md), and the training crop of the FIB-SEM volume
# (z 0-169 only: the held-out slab never travels) in .gpu/. Budget: GPU_BUDGET_S seconds in all.
set -u
OUT=${OUT:-/tmp/gpu_out}
BUDGET=${GPU_BUDGET_S:-480}
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
# the repository as a package without installing it: axonseg.pipelines lives in pipelines/
[ -e axonseg/pipelines ] || ln -s "$PWD/pipelines" axonseg/pipelines
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p ../shared/data/fib_medulla_ts2
[ -e ../shared/data/fib_medulla_ts2/fib_medulla_ts2_250.h5 ] || cp .gpu/fib_medulla_ts2_250.h5 ../shared/data/fib_medulla_ts2/
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv; nproc; grep -m1 "model name" /proc/cpuinfo
  python3 -c "import torch, numpy, zarr, dask, monai, axonseg.pipelines.train as t; print('torch', torch.__version__, 'numpy', numpy.__version__, 'zarr', zarr.__version__)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== benchmark at $(elapsed) s"
(cd benchmarks && timeout 120 python3 gpu.py) > "$OUT/bench_gpu.log" 2>&1
tail -4 "$OUT/bench_gpu.log"

echo "== training rate probe at $(elapsed) s"
WORK=/tmp/train_fib_v7
rm -rf "$WORK" /tmp/probe
timeout 110 python3 -m axonseg.pipelines.train configs/train_fib_v7.yaml --out-dir /tmp/probe \
  --set steps=1000000 --set validate_every=1000000 --set checkpoint_every=1000000 --time-limit 0.75 > "$OUT/train.log" 2>&1
PROBE=$(grep -o "reached at step [0-9]*" "$OUT/train.log" | grep -o "[0-9]*$")
PROBE=${PROBE:-0}
# seconds left for the run: the budget, less what has passed, less 40 s for loading and saving
LEFT=$(( BUDGET - $(elapsed) - 40 ))
STEPS=$(python3 -c "print(max(200, int($PROBE / 45 * $LEFT * 0.92)))")
EVERY=$(( (STEPS + 3) / 4 ))
echo "probe: $PROBE steps in 45 s; run: $STEPS steps in at most $LEFT s (checkpoints every $EVERY)" | tee -a "$OUT/train.log"

echo "== training at $(elapsed) s"
timeout $(( LEFT + 30 )) python3 -m axonseg.pipelines.train configs/train_fib_v7.yaml --out-dir "$WORK" \
  --set steps=$STEPS --set checkpoint_every=$EVERY --set validate_every=$(( (STEPS + 7) / 8 )) \
  --time-limit "$(python3 -c "print($LEFT / 60)")" >> "$OUT/train.log" 2>&1
echo "training exit $? at $(elapsed) s"
grep "step\|time limit\|error" "$OUT/train.log" | tail -12
cp "$WORK/losses.csv" "$OUT/" 2>/dev/null
for f in "$WORK"/checkpoints/step_*.pt; do [ -e "$f" ] && cp "$f" "$OUT/"; done
ls -la "$OUT"
echo "done at $(elapsed) s"
