#!/usr/bin/env bash
# Installs libtorch 2.13.0 (the PyPI wheel torch==2.13.0, which tch 0.26 requires) into a per-user
# virtual environment. Idempotent: when the environment already holds torch 2.13.0 it returns at once.
#
#   CONVTRAIN_TORCH_HOME   where the environment lives (default $HOME/.cache/convtrain/torch-2.13.0)
#   CONVTRAIN_PYTHON       the Python used to create it (default python3)
#
# Prints the environment's directory on its last line.
set -euo pipefail

TORCH_VERSION=2.13.0
venv="${CONVTRAIN_TORCH_HOME:-${HOME:-/root}/.cache/convtrain/torch-${TORCH_VERSION}}"
py="${CONVTRAIN_PYTHON:-python3}"
stamp="$venv/.convtrain-torch-${TORCH_VERSION}"

if [ -f "$stamp" ] && [ -x "$venv/bin/python" ]; then
  echo "$venv"
  exit 0
fi

if ! command -v "$py" >/dev/null 2>&1; then
  echo "convtrain setup: error: '$py' was not found on PATH. Install Python 3 (3.10 or newer) with pip and venv," \
       "or point CONVTRAIN_PYTHON at a Python 3 interpreter, then run scripts/setup.sh again." >&2
  exit 2
fi
if ! "$py" -c 'import venv, sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
  echo "convtrain setup: error: '$py' is not a Python >= 3.10 with the venv module. Install one (Debian: apt-get" \
       "install python3 python3-venv python3-pip) or set CONVTRAIN_PYTHON." >&2
  exit 2
fi

echo "convtrain setup: installing torch==${TORCH_VERSION} into $venv (about 4.7 GB, a few minutes)" >&2
mkdir -p "$(dirname "$venv")"
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  echo "convtrain setup: error: pip is not available in $venv. Install pip for $py (Debian: apt-get install" \
       "python3-pip python3-venv) and run scripts/setup.sh again." >&2
  exit 2
fi
"$venv/bin/python" -m pip install --disable-pip-version-check -q "torch==${TORCH_VERSION}" numpy safetensors >&2
"$venv/bin/python" -c "import torch; assert torch.__version__.split('+')[0] == '${TORCH_VERSION}', torch.__version__"
touch "$stamp"
echo "$venv"
