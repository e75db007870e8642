#!/usr/bin/env bash
# Finds or installs libtorch 2.13.0 (what tch 0.26 requires) and prints how to build against it.
# Idempotent: a second run returns at once.
#
#   LIBTORCH               a plain libtorch 2.13 directory (lib/libtorch_cpu.so, include/): used as is
#   CONVTRAIN_TORCH_HOME   a Python environment (venv or conda) holding torch 2.13.0: used as is when it
#                          has one, otherwise created/completed there (default
#                          $HOME/.cache/convtrain/torch-2.13.0; on clusters put it on scratch, not $HOME)
#   CONVTRAIN_PYTHON       the Python used to create a new environment (default python3)
#
# Prints two lines last: `libtorch <dir>` or `pytorch <env>`, then the environment's path (empty for a
# plain libtorch). Exit 2 with one paragraph when nothing usable can be had.
set -euo pipefail

TORCH_VERSION=2.13.0
fail() {
  echo "convtrain setup: error: $*" >&2
  exit 2
}

# 1. A plain libtorch directory.
if [ -n "${LIBTORCH:-}" ]; then
  [ -f "$LIBTORCH/lib/libtorch_cpu.so" ] || fail "LIBTORCH=$LIBTORCH holds no lib/libtorch_cpu.so; point it at" \
    "the unpacked libtorch ${TORCH_VERSION} directory (the one with lib/ and include/), or unset it to use a" \
    "Python environment instead."
  # A libtorch archive has build-version; the torch/ directory of a PyTorch wheel has version.py.
  version="$(cat "$LIBTORCH/build-version" 2>/dev/null ||
    sed -n "s/^__version__ = '\([^']*\)'.*/\1/p" "$LIBTORCH/version.py" 2>/dev/null || true)"
  case "$version" in
    "${TORCH_VERSION}"*) ;;
    *) fail "LIBTORCH=$LIBTORCH is libtorch '${version:-of unknown version (no build-version file)}', but" \
      "convtrain (tch 0.26) needs exactly ${TORCH_VERSION}. Download the ${TORCH_VERSION} archive or unset LIBTORCH." ;;
  esac
  echo "libtorch $LIBTORCH"
  echo ""
  exit 0
fi

venv="${CONVTRAIN_TORCH_HOME:-${HOME:-/root}/.cache/convtrain/torch-${TORCH_VERSION}}"
stamp="$venv/.convtrain-torch-${TORCH_VERSION}"
torch_version() { "$1" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true; }

# 2. An environment that already holds torch 2.13.0 (ours, stamped, or the user's venv/conda env).
if [ -f "$stamp" ] && [ -x "$venv/bin/python" ]; then
  echo "pytorch $venv"
  echo "$venv"
  exit 0
fi
if [ -x "$venv/bin/python" ]; then
  have="$(torch_version "$venv/bin/python")"
  if [ "$have" = "$TORCH_VERSION" ] && "$venv/bin/python" -c 'import numpy, safetensors' 2>/dev/null; then
    echo "pytorch $venv"
    echo "$venv"
    exit 0
  fi
  if [ -n "$have" ] && [ "$have" != "$TORCH_VERSION" ] && [ ! -f "$venv/.convtrain-created" ]; then
    fail "$venv holds torch $have, but convtrain (tch 0.26) needs exactly torch ${TORCH_VERSION}. Point" \
      "CONVTRAIN_TORCH_HOME at an environment with torch ${TORCH_VERSION}, at an empty directory (convtrain" \
      "installs it there), or set LIBTORCH to a libtorch ${TORCH_VERSION} directory."
  fi
fi

# 3. Create or complete our own environment.
py="${CONVTRAIN_PYTHON:-python3}"
command -v "$py" >/dev/null 2>&1 || fail "'$py' was not found on PATH. Install Python 3 (3.10 or newer) with" \
  "pip and venv, or point CONVTRAIN_PYTHON at a Python 3 interpreter, or CONVTRAIN_TORCH_HOME at an environment" \
  "with torch ${TORCH_VERSION}, or LIBTORCH at a libtorch ${TORCH_VERSION} directory; then run scripts/setup.sh again."
"$py" -c 'import venv, sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null ||
  fail "'$py' is not a Python >= 3.10 with the venv module. Install one (Debian: apt-get install python3" \
    "python3-venv python3-pip) or set CONVTRAIN_PYTHON."

echo "convtrain setup: installing torch==${TORCH_VERSION} into $venv (about 4.7 GB, a few minutes)" >&2
mkdir -p "$venv" 2>/dev/null || fail "cannot create $venv; choose a writable CONVTRAIN_TORCH_HOME (on a" \
  "cluster: a scratch directory, since the environment takes about 4.7 GB)."
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  # Missing or broken (a half-made environment): make it anew.
  "$py" -m venv --clear "$venv" || fail "'$py -m venv $venv' failed (see above); install python3-venv."
fi
touch "$venv/.convtrain-created"
"$venv/bin/python" -m pip --version >/dev/null 2>&1 || fail "pip is not available in $venv. Install pip for" \
  "$py (Debian: apt-get install python3-pip python3-venv) and run scripts/setup.sh again."
pip_log="$venv/.convtrain-pip.log"
# A previous install that was killed half-way may have left files without their metadata (or the
# reverse); --force-reinstall of an environment whose torch does not import repairs both.
reinstall=()
if [ -n "$(ls -d "$venv"/lib/python*/site-packages/torch 2>/dev/null)" ] && [ -z "$(torch_version "$venv/bin/python")" ]; then
  reinstall=(--force-reinstall)
fi
if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q "${reinstall[@]}" \
  "torch==${TORCH_VERSION}" numpy safetensors >"$pip_log" 2>&1; then
  fail "installing torch==${TORCH_VERSION} with pip into $venv failed; the last lines of $pip_log say:" \
    "$(tail -n 3 "$pip_log" | tr '\n' ' ')— Is PyPI reachable (a proxy: HTTPS_PROXY; an index mirror:" \
    "PIP_INDEX_URL)? Without network, point CONVTRAIN_TORCH_HOME at an existing environment with torch" \
    "${TORCH_VERSION}, or LIBTORCH at an unpacked libtorch ${TORCH_VERSION} directory. Re-running" \
    "scripts/setup.sh continues where this stopped."
fi
[ "$(torch_version "$venv/bin/python")" = "$TORCH_VERSION" ] ||
  fail "torch in $venv does not import as ${TORCH_VERSION} after installing; see $pip_log."
touch "$stamp"
echo "pytorch $venv"
echo "$venv"
