// Autocast for any device type. tch binds only libtorch's deprecated CUDA switch
// (`at_autocast_set_enabled`); convtrain's `--precision bf16|fp16` needs the per-device form for the
// CPU as well, and the dtype. Each call returns 0, or 1 when libtorch threw (its message copied into
// `err`, at most `len` bytes with the terminating NUL). See src/precision.rs.
#include <ATen/autocast_mode.h>

#include <cstring>
#include <exception>

namespace {

at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }

int report(const std::exception& e, char* err, size_t len) {
  if (len > 0) {
    std::strncpy(err, e.what(), len - 1);
    err[len - 1] = '\0';
  }
  return 1;
}

}  // namespace

extern "C" {

/// The autocast state of one device type, as `convtrain_autocast_enter` found it.
struct convtrain_autocast_state {
  int enabled;
  int dtype;
};

/// Turns autocast on for the CPU (`cuda` 0) or CUDA with bfloat16 (`half` 0) or float16, one nesting
/// level deeper (as `torch.autocast.__enter__`); the state it replaced goes to `previous`.
int convtrain_autocast_enter(int cuda, int half, convtrain_autocast_state* previous, char* err, size_t len) {
  try {
    const auto device = device_type(cuda);
    previous->enabled = at::autocast::is_autocast_enabled(device) ? 1 : 0;
    previous->dtype = static_cast<int>(at::autocast::get_autocast_dtype(device));
    at::autocast::set_autocast_dtype(device, half ? at::kHalf : at::kBFloat16);
    at::autocast::set_autocast_enabled(device, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (const std::exception& e) {
    return report(e, err, len);
  }
}

/// Leaves one nesting level (as `torch.autocast.__exit__`): the cast cache is cleared when the
/// outermost level ends, and the device's `previous` state is put back.
int convtrain_autocast_exit(int cuda, const convtrain_autocast_state* previous, char* err, size_t len) {
  try {
    const auto device = device_type(cuda);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(device, previous->enabled != 0);
    at::autocast::set_autocast_dtype(device, static_cast<at::ScalarType>(previous->dtype));
    return 0;
  } catch (const std::exception& e) {
    return report(e, err, len);
  }
}

}  // extern "C"
