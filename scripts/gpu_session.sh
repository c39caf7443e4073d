#!/usr/bin/env bash
# One prepared run on a lent GPU machine (issues #15 and #18):
#   1. the GPU benchmark (benchmarks/gpu.py; SKIP_BENCH=1 leaves it out);
#   2. fib_v7 (configs/train_fib_v7.yaml: fib_v4's recipe at batch 8, a wider appearance draw) for
#      the rest of the time budget, its cosine schedule sized from a step rate measured first.
# Why one run with every core feeding it: on the first lease (2026-12-04) two runs side by side
# made 1.5 and 0.65 s/step against 59 steps/s of GPU compute: the augmentation workers set the
# pace, so the second run only took workers from the first, and its fine-tune (aniso_v4) did not
# move validation NERL (data/models/aniso_v3/README.md).
# What it keeps goes to $OUT (at most 8 files come back): bench_gpu.log, logs.tar.gz (environment,
# training log, losses.csv) and two checkpoints, half-way and last (resumable states). Score one
# afterwards on the CPU by validation NERL through the pipeline (labels z 70-99), on a copy, as
# --recalibrate-bn rewrites the file as a model with its threshold:
#   cp fib_v7_step_N.pt /tmp/m.pt && python -m axonseg.pipelines.train configs/train_fib.yaml --recalibrate-bn /tmp/m.pt
# (train_fib.yaml: the same network and validation split, with segment_validation_every set).
#
# Prepare first with scripts/gpu_prepare.sh (prepare, trim; restore after). Run from the repository
# root on the GPU machine: GPU_BUDGET_S=470 bash scripts/gpu_session.sh (device run: carry
# [".whl", ".gpu"], timeout_s 540). The image there has torch, numpy, scipy, scikit-image and h5py
# but not zarr, dask, pydantic, fastremap, cc3d, edt or monai: those travel as wheels in .whl/, and
# the FIB-SEM training crop (z 0-169 only: the held-out slab never travels) in .gpu/.
# TRAIN_SET adds --set options to both training commands: a dry run of this script on a CPU is
#   SKIP_BENCH=1 GPU_BUDGET_S=200 TRAIN_SET="--set device=cpu --set amp=off" bash scripts/gpu_session.sh
set -u
TRAIN_SET=${TRAIN_SET:-}
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
# (removed again at exit, so a dry run leaves the checkout as it was)
if [ ! -e axonseg/pipelines ]; then
  ln -s "$PWD/pipelines" axonseg/pipelines
  trap 'rm -f axonseg/pipelines' EXIT
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p ../shared/data/fib_medulla_ts2
[ -e ../shared/data/fib_medulla_ts2/fib_medulla_ts2_250.h5 ] || cp .gpu/fib_medulla_ts2_250.h5 ../shared/data/fib_medulla_ts2/
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv; nproc; grep -m1 "model name" /proc/cpuinfo
  python3 -c "import torch, numpy, zarr, dask, monai, axonseg.pipelines.train; print('torch', torch.__version__, 'numpy', numpy.__version__, 'zarr', zarr.__version__)"
} > "$LOGS/env.txt" 2>&1
cat "$LOGS/env.txt"

WORKERS=$(( $(nproc) - 1 ))
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  echo "== benchmark (GPU) at $(elapsed) s"
  (cd benchmarks && timeout 180 python3 gpu.py) > "$OUT/bench_gpu.log" 2>&1
  tail -4 "$OUT/bench_gpu.log"
fi

NAME=fib_v7 CONFIG=configs/train_fib_v7.yaml
echo "== rate probe at $(elapsed) s ($WORKERS augmentation workers)"
timeout 110 python3 -m axonseg.pipelines.train "$CONFIG" --out-dir /tmp/probe --set num_workers=$WORKERS \
  --set steps=1000000 --set validate_every=1000000 --set checkpoint_every=1000000 --time-limit 0.75 $TRAIN_SET > "$LOGS/probe.log" 2>&1
# seconds left for the run: the budget, less what has passed, less 45 s for loading, saving and copying
LEFT=$(( BUDGET - $(elapsed) - 45 ))
done_steps=$(grep -o "reached at step [0-9]*" "$LOGS/probe.log" | grep -o "[0-9]*$")
steps=$(python3 -c "print(max(100, int(${done_steps:-0} / 45 * $LEFT * 0.92)))")
every=$(( (steps + 1) / 2 ))
echo "$NAME: probe ${done_steps:-0} steps in 45 s; run $steps steps in at most $LEFT s" | tee "$LOGS/$NAME.log"
timeout $(( LEFT + 30 )) python3 -m axonseg.pipelines.train "$CONFIG" --out-dir "/tmp/train_$NAME" \
  --set num_workers=$WORKERS --set steps=$steps --set checkpoint_every=$every --set validate_every=$(( (steps + 5) / 6 )) \
  --time-limit "$(python3 -c "print($LEFT / 60)")" $TRAIN_SET >> "$LOGS/$NAME.log" 2>&1
echo "$NAME: exit $? at $(elapsed) s" >> "$LOGS/$NAME.log"
grep "probe\|val_loss\|time limit\|error\|exit" "$LOGS/$NAME.log" | tail -8
cp "/tmp/train_$NAME/losses.csv" "$LOGS/losses_$NAME.csv" 2>/dev/null
for f in /tmp/train_"$NAME"/checkpoints/step_*.pt; do [ -e "$f" ] && cp "$f" "$OUT/${NAME}_$(basename "$f")"; done
tar czf "$OUT/logs.tar.gz" -C /tmp gpu_logs
ls -la "$OUT"
echo "done at $(elapsed) s"
