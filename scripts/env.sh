# Sourced by scripts/convtrain and scripts/test.sh: finds or installs libtorch (scripts/setup.sh) and
# exports what cargo needs to build tch against it. The same variables every time, so that cargo never
# rebuilds torch-sys because its environment changed.
_convtrain_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_convtrain_setup="$(bash "$_convtrain_root/scripts/setup.sh" | tail -n 2)" || return 2 2>/dev/null || exit 2
_convtrain_kind="$(printf '%s\n' "$_convtrain_setup" | head -n 1)"
case "$_convtrain_kind" in
  libtorch\ *)
    # A plain libtorch directory: tch builds against it; the Python cross-checks need a torch env.
    export LIBTORCH="${_convtrain_kind#libtorch }"
    unset LIBTORCH_USE_PYTORCH LIBTORCH_LIB LIBTORCH_INCLUDE
    ;;
  *)
    CONVTRAIN_TORCH_HOME="$(printf '%s\n' "$_convtrain_setup" | tail -n 1)"
    export CONVTRAIN_TORCH_HOME
    export VIRTUAL_ENV="$CONVTRAIN_TORCH_HOME"
    export PATH="$CONVTRAIN_TORCH_HOME/bin:$PATH"
    export LIBTORCH_USE_PYTORCH=1
    unset LIBTORCH LIBTORCH_LIB LIBTORCH_INCLUDE
    ;;
esac
unset _convtrain_root _convtrain_setup _convtrain_kind
