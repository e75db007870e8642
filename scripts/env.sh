# Sourced by scripts/convtrain and scripts/test.sh: installs libtorch if missing (scripts/setup.sh) and
# exports what cargo needs to build tch against it. The same variables every time, so that cargo never
# rebuilds torch-sys because its environment changed.
_convtrain_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONVTRAIN_TORCH_HOME="$(bash "$_convtrain_root/scripts/setup.sh" | tail -n 1)" || return 2 2>/dev/null || exit 2
export CONVTRAIN_TORCH_HOME
export VIRTUAL_ENV="$CONVTRAIN_TORCH_HOME"
export PATH="$CONVTRAIN_TORCH_HOME/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
unset LIBTORCH LIBTORCH_LIB LIBTORCH_INCLUDE
