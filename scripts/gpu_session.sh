#!/usr/bin/env bash
# One prepared run on a lent GPU machine (issues #15 and #18):
#   1. the GPU benchmark (benchmarks/gpu.py), while the CPUs make the anisotropic training set;
#   2. two trainings side by side on the one GPU for the rest of the time budget, each with its
#      cosine schedule sized from a step rate measured side by side first:
#      fib_v7 (configs/train_fib_v7.yaml: fib_v4's recipe at batch 8, a wider appearance draw) and
#      aniso_v4 (configs/train_aniso_v4.yaml: aniso_v3 fine-tuned at batch 8).
# What it keeps goes to $OUT (at most 8 files come back): bench_gpu.log, logs.tar.gz (environment,
# training logs, losses.csv of each run) and two checkpoints of each run, half-way and last
# (resumable states; the CPU scores them afterwards by validation NERL through the pipeline).
#
# Prepare first with scripts/gpu_prepare.sh (prepare, trim; restore after). Run from the repository
# root on the GPU machine: GPU_BUDGET_S=470 bash scripts/gpu_session.sh (device run: carry
# [".whl", ".gpu"], timeout_s 540). The image there has torch, numpy, scipy, scikit-image and h5py
# but not zarr, dask, pydantic, fastremap, cc3d, edt or monai: those travel as wheels in .whl/, and
# the FIB-SEM training crop (z 0-169 only: the held-out slab never travels) in .gpu/.
set -u
OUT=${OUT:-/tmp/gpu_out}
BUDGET=${GPU_BUDGET_S:-480}
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
mkdir -p "$OUT" /tmp/gpu_logs
LOGS=/tmp/gpu_logs
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
  python3 -c "import torch, numpy, zarr, dask, monai, axonseg.pipelines.train; print('torch', torch.__version__, 'numpy', numpy.__version__, 'zarr', zarr.__version__)"
} > "$LOGS/env.txt" 2>&1
cat "$LOGS/env.txt"

echo "== anisotropic training set (CPU, background) and benchmark (GPU) at $(elapsed) s"
OMP_NUM_THREADS=1 python3 scripts/aniso_training_set.py --jobs 12 --only train val > "$LOGS/aniso_set.log" 2>&1 &
SET_PID=$!
(cd benchmarks && timeout 180 python3 gpu.py) > "$OUT/bench_gpu.log" 2>&1
tail -4 "$OUT/bench_gpu.log"
wait $SET_PID; echo "training set: exit $? at $(elapsed) s, $(ls -d runs/aniso_v3/*.zarr 2>/dev/null | wc -l) volumes"

# NAME CONFIG: a 45-second rate probe, both runs at once (they share the GPU and the 16 cores)
probe() {
  timeout 110 python3 -m axonseg.pipelines.train "$2" --out-dir "/tmp/probe_$1" --set num_workers=7 \
    --set steps=1000000 --set validate_every=1000000 --set checkpoint_every=1000000 --time-limit 0.75 > "$LOGS/$1.log" 2>&1
}
echo "== rate probes at $(elapsed) s"
probe fib_v7 configs/train_fib_v7.yaml & P1=$!
probe aniso_v4 configs/train_aniso_v4.yaml & P2=$!
wait $P1 $P2
# seconds left for the runs: the budget, less what has passed, less 45 s for loading, saving and copying
LEFT=$(( BUDGET - $(elapsed) - 45 ))
run() {  # NAME CONFIG
  local done steps every
  done=$(grep -o "reached at step [0-9]*" "$LOGS/$1.log" | grep -o "[0-9]*$")
  steps=$(python3 -c "print(max(100, int(${done:-0} / 45 * $LEFT * 0.92)))")
  every=$(( (steps + 1) / 2 ))
  echo "$1: probe ${done:-0} steps in 45 s; run $steps steps in at most $LEFT s" | tee -a "$LOGS/$1.log"
  timeout $(( LEFT + 30 )) python3 -m axonseg.pipelines.train "$2" --out-dir "/tmp/train_$1" --set num_workers=7 \
    --set steps=$steps --set checkpoint_every=$every --set validate_every=$(( (steps + 5) / 6 )) \
    --time-limit "$(python3 -c "print($LEFT / 60)")" >> "$LOGS/$1.log" 2>&1
  echo "$1: exit $? at $(elapsed) s" >> "$LOGS/$1.log"
}
echo "== training at $(elapsed) s, $LEFT s left"
run fib_v7 configs/train_fib_v7.yaml & R1=$!
run aniso_v4 configs/train_aniso_v4.yaml & R2=$!
wait $R1 $R2
for name in fib_v7 aniso_v4; do
  grep "probe\|val_loss\|time limit\|error\|exit" "$LOGS/$name.log" | tail -6
  cp "/tmp/train_$name/losses.csv" "$LOGS/losses_$name.csv" 2>/dev/null
  for f in /tmp/train_"$name"/checkpoints/step_*.pt; do [ -e "$f" ] && cp "$f" "$OUT/${name}_$(basename "$f")"; done
done
tar czf "$OUT/logs.tar.gz" -C /tmp gpu_logs
ls -la "$OUT"
echo "done at $(elapsed) s"
