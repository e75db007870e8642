// Autocast for any device type. tch binds only libtorch's deprecated CUDA switch
// (`at_autocast_set_enabled`); convtrain's `--precision bf16|fp16` needs the per-device form for the
// CPU as well, and the dtype. Each call returns 0, or 1 when libtorch threw (its message copied into
// `err`, at most `len` bytes with the terminating NUL). Also how the CPU runs bfloat16, from the CPU
// capabilities libtorch detected. See src/precision.rs.
#include <ATen/autocast_mode.h>
#include <ATen/cpu/Utils.h>

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

/// How libtorch runs bfloat16 convolutions on this CPU: 2 with AVX512-BF16 or AMX-BF16 instructions
/// (oneDNN's native kernels), 1 with AVX-512 BW/VL/DQ only (oneDNN, converting to float32 inside its
/// kernels), 0 on an x86-64 CPU without AVX-512 (libtorch's reference kernels), -1 when not known (not
/// an x86-64 CPU, or the query failed).
int convtrain_cpu_bf16_support() {
  try {
    const auto caps = at::cpu::get_cpu_capabilities();
    const auto flag = [&](const char* key) {
      const auto it = caps.find(key);
      return it != caps.end() && it->second.isBool() && it->second.toBool();
    };
    const auto arch = caps.find("architecture");
    if (arch == caps.end() || !arch->second.isString() || arch->second.toStringRef() != "x86_64") {
      return -1;
    }
    if (flag("avx512_bf16") || flag("amx_bf16")) {
      return 2;
    }
    return flag("avx512_bw") && flag("avx512_vl") && flag("avx512_dq") ? 1 : 0;
  } catch (const std::exception&) {
    return -1;
  }
}

}  // extern "C"
