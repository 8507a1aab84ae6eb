#!/usr/bin/env bash
# experiments/gpu_check.py on a bare GPU machine that cannot download anything: first the
# packages it lacks, from wheels carried in a folder (default .whl/ at the repo root),
# installed into a target folder put on PYTHONPATH; then the check.
#
#   experiments/gpu_check.sh --download     # here, with PyPI: fill .whl/ (about 11 MB)
#   experiments/gpu_check.sh --out=DIR [gpu_check.py flags]   # there
#   experiments/gpu_check.sh --run_list [run_list.py flags]   # there: the GPU run list
#
# A wheel is installed only where the machine's Python lacks the package or has an older
# version of it: the machine's own jax, numpy, protobuf... stay unless they are too old.
# Environment: PYTHON (default python3), HYPERPROTO_WHEELS (the folder), HYPERPROTO_SITE
# (the target, default /tmp/hyperproto_site).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
WHEELS=${HYPERPROTO_WHEELS:-$ROOT/.whl}
SITE=${HYPERPROTO_SITE:-/tmp/hyperproto_site}

# What the GPU image (Python 3.12, jax 0.11.2, flax, optax, orbax-checkpoint, pytest)
# lacks: ml-collections, tensorflow-datasets, tensorboardX, grain, array_record and the
# dependencies of these that it does not have, at the versions the suite runs here.
# etils and protobuf are there, but maybe older than tensorflow-datasets needs.
# pytest-xdist (and execnet): gpu_check's tests part runs the device tests in workers.
PINS=(
  array_record==0.8.6 dm-tree==0.1.10 docstring-parser==0.18.0 etils==1.15.0
  execnet==2.1.2 googleapis-common-protos==1.76.0 grain==0.2.18 immutabledict==4.3.1
  importlib-resources==7.1.0 ml-collections==1.1.0 portpicker==1.6.0 protobuf==7.36.2
  pytest-xdist==3.8.0 simple-parsing==0.1.9 tensorboardX==2.6.5
  tensorflow-datasets==4.9.10 tensorflow-metadata==1.21.0 termcolor==3.3.0 toml==0.10.2
)
# No wheel on PyPI: built here (pure Python).
SDIST_ONLY=(promise==2.3)

if [[ ${1:-} == --download ]]; then
  mkdir -p "$WHEELS"
  "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$WHEELS" "${PINS[@]}"
  "$PYTHON" -m pip wheel --no-deps -w "$WHEELS" "${SDIST_ONLY[@]}"
  du -sh "$WHEELS"
  exit 0
fi

if compgen -G "$WHEELS/*.whl" >/dev/null; then
  mapfile -t NEEDED < <("$PYTHON" - "$WHEELS" <<'EOF'
import glob, importlib.metadata, os, sys
from packaging.version import Version
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*.whl'))):
  name, version = os.path.basename(path).split('-')[:2]
  try:
    if Version(importlib.metadata.version(name)) >= Version(version):
      continue
  except importlib.metadata.PackageNotFoundError:
    pass
  print(path)
EOF
  )
  if ((${#NEEDED[@]})); then
    echo "[gpu_check.sh] installing ${#NEEDED[@]} carried wheels into $SITE"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target "$SITE" "${NEEDED[@]}"
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [[ ${1:-} == --run_list ]]; then
  shift
  exec "$PYTHON" "$ROOT/experiments/run_list.py" "$@"
fi
exec "$PYTHON" "$ROOT/experiments/gpu_check.py" "$@"
