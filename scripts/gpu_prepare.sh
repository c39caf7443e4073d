#!/usr/bin/env bash
# Get this checkout ready for scripts/gpu_session.sh on a lent GPU machine (the workplace's
# `device` tool; /work/.library/device/README.md), and back.
#
#   bash scripts/gpu_prepare.sh prepare   # wheels the GPU image lacks -> .whl/, the FIB training crop -> .gpu/
#   bash scripts/gpu_prepare.sh trim      # keep the travelling tree under the tool's 64 MiB
#   ... run: GPU_BUDGET_S=470 bash scripts/gpu_session.sh, carry [".whl", ".gpu"], timeout_s 540
#   bash scripts/gpu_prepare.sh restore   # at once after the run: the index as it was
#
# Why trim: what travels is every tracked file plus untracked ones git does not ignore, and the
# committed training states (data/models/*/checkpoints, ~44 MB) with the wheels and the crop pass
# 64 MiB. `trim` untracks the folders the GPU run does not read and ignores them through
# data/models/.gitignore: the top .gitignore re-includes checkpoints with "!" patterns, which beat
# .git/info/exclude, and only a deeper .gitignore overrides them. Never commit between trim and
# restore. The held-out slab (z 180-249) never travels: .gpu/ holds z 0-169 only.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p .git/info
exclude() { grep -qxF "$1" .git/info/exclude 2>/dev/null || echo "$1" >> .git/info/exclude; }
BULKY="data/models/fib_aug/checkpoints data/models/aniso_v2 data/models/fib_v5 data/models/fib_v6 data/models/aniso_v3/checkpoints data/models/fib_v4/checkpoints data/fib_medulla_heldout.h5"

case "${1:-}" in
prepare)
  exclude /.whl/; exclude /.gpu/
  mkdir -p .whl .gpu
  # the versions this checkout's environment runs, as Python 3.12 x86-64 wheels (the GPU image's python)
  packages="zarr numcodecs donfig google-crc32c dask partd locket pydantic pydantic_core annotated-types
            typing-inspection fastremap connected-components-3d edt dill tblib importlib_metadata lazy-importer"
  for name in $packages; do
    version=$($PY -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
    [ -n "$version" ] || { echo "error: $name is not installed in .venv (run make install)"; exit 1; }
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$name==$version" 2>&1 | grep -v "^WARNING" || true
  done
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .whl "monai>=1.3" 2>&1 | grep -v "^WARNING" || true
  $PY - <<'EOF'
import h5py
from pathlib import Path

source = Path("../shared/data/fib_medulla_ts2/fib_medulla_ts2_250.h5")
if not source.is_file():
    raise SystemExit(f"error: {source}: not found (the FIB-SEM volume sits in ../shared)")
with h5py.File(source, "r") as src, h5py.File(".gpu/fib_medulla_ts2_250.h5", "w") as dst:
    for name in ("raw", "labels"):
        data = dst.create_dataset(name, data=src[name][0:170], compression="gzip", chunks=(50, 125, 125))
        data.attrs.update(dict(src[name].attrs))
        data.attrs["note_crop"] = "z 0-169 of fib_medulla_ts2_250.h5 (the training ROI; the held-out slab is not in it)"
EOF
  cp ../shared/data/fib_medulla_ts2/LICENSE.txt ../shared/data/fib_medulla_ts2/README.md .gpu/
  du -shc .whl .gpu
  ;;
trim)
  # shellcheck disable=SC2086
  git rm -r -q --cached $BULKY
  printf '%s\n' fib_aug/checkpoints/ aniso_v2/ fib_v5/ fib_v6/ aniso_v3/checkpoints/ fib_v4/checkpoints/ > data/models/.gitignore
  exclude /data/fib_medulla_heldout.h5
  echo "travels (besides the carried .whl and .gpu):"
  (git ls-files -z; git ls-files -z --others --exclude-standard) | du -ch --files0-from=- | tail -1
  ;;
restore)
  rm -f data/models/.gitignore
  git reset -q -- data
  grep -vxF /data/fib_medulla_heldout.h5 .git/info/exclude > .git/info/exclude.new || true
  mv .git/info/exclude.new .git/info/exclude
  git status --short
  ;;
*)
  echo "usage: bash scripts/gpu_prepare.sh prepare|trim|restore"; exit 2
  ;;
esac
