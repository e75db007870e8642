// One SGD update of a float32 CPU parameter in a single pass over its memory (src/train/optimizer.rs,
// `Sgd::step`). Written with tensor operations the same update makes six to eight passes, each
// reading one or two whole tensors and writing one; here each element of the parameter, its gradient
// and its momentum buffer is read once and written once. Every product and sum is rounded to float32
// on its own, in the order of the tensor operations (this file is compiled with -ffp-contract=off, so
// no multiply-add is fused): the result is the tensor operations' bit for bit, which is what a test
// in optimizer.rs checks against them.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace {

struct Rule {
  float wd, m, one_minus_dampening, lr;
  bool dampened, first;
};

/// The update of one element: d = g + wd·p; b = m·b + (1−dampening)·d (b = d at the first step);
/// d = d + m·b (Nesterov) or b; p = p − lr·d.
template <bool Decay, bool Momentum, bool Nesterov>
void update(const Rule& r, float* p, const float* g, float* b, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    float d = g ? g[i] : 0.0f;
    if (Decay) {
      float decay = p[i] * r.wd;
      d = decay + d;
    }
    if (Momentum) {
      float buf;
      if (r.first) {
        buf = d;
      } else {
        float kept = b[i] * r.m;
        float added = r.dampened ? d * r.one_minus_dampening : d;
        buf = kept + added;
      }
      b[i] = buf;
      if (Nesterov) {
        float ahead = buf * r.m;
        d = d + ahead;
      } else {
        d = buf;
      }
    }
    float delta = d * r.lr;
    p[i] = p[i] - delta;
  }
}

template <bool Decay, bool Momentum, bool Nesterov>
void run(const Rule& r, float* p, const float* g, float* b, int64_t n) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    update<Decay, Momentum, Nesterov>(r, p, g, b, begin, end);
  });
}

/// Whether `t` can be walked element by element in memory order together with `p`.
bool same_layout(const at::Tensor& t, const at::Tensor& p) {
  return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.sizes() == p.sizes() &&
         t.strides() == p.strides();
}

}  // namespace

extern "C" {

/// Steps `p` (an `at::Tensor*` behind a tch handle) with gradient `g` (null: a zero gradient) and
/// momentum buffer `b` (null: no momentum; `first`: the buffer is written, not read). Returns 0 when
/// done, 1 when a tensor is not a dense float32 CPU tensor laid out as `p` (the caller then steps
/// with tensor operations; nothing was written).
int convtrain_sgd_step(at::Tensor* p, const at::Tensor* g, at::Tensor* b, int first, double wd, double m,
                       double dampening, int nesterov, double lr) {
  try {
    if (!p->device().is_cpu() || p->scalar_type() != at::kFloat || !p->is_non_overlapping_and_dense() ||
        (g && !same_layout(*g, *p)) || (b && !same_layout(*b, *p))) {
      return 1;
    }
    // The scalars as ATen's CPU kernels use them with a float32 tensor: cast to float once.
    Rule r{static_cast<float>(wd), static_cast<float>(m), static_cast<float>(1.0 - dampening),
           static_cast<float>(lr), dampening != 0.0, first != 0};
    float* pp = p->data_ptr<float>();
    const float* gp = g ? g->data_ptr<float>() : nullptr;
    float* bp = b ? b->data_ptr<float>() : nullptr;
    int64_t n = p->numel();
    bool decay = wd != 0.0, momentum = b != nullptr, ahead = momentum && nesterov != 0;
    if (decay && ahead) run<true, true, true>(r, pp, gp, bp, n);
    else if (decay && momentum) run<true, true, false>(r, pp, gp, bp, n);
    else if (decay) run<true, false, false>(r, pp, gp, bp, n);
    else if (ahead) run<false, true, true>(r, pp, gp, bp, n);
    else if (momentum) run<false, true, false>(r, pp, gp, bp, n);
    else run<false, false, false>(r, pp, gp, bp, n);
    // Written through raw memory: tell autograd and the eval-kernel cache (src/models/kernel_cache.rs)
    // that the tensors changed, as an in-place tensor operation would.
    p->unsafeGetTensorImpl()->bump_version();
    if (b) b->unsafeGetTensorImpl()->bump_version();
    return 0;
  } catch (...) {
    // Only the checks and `data_ptr` can throw (the loop cannot), so nothing has been written yet.
    return 1;
  }
}

}  // extern "C"
