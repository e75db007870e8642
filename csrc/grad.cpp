// Drops a tensor's gradient, as `param.grad = None` does in Python: tch can read a gradient and
// zero it in place but not remove it. With the gradient gone, the next backward pass stores its
// result instead of adding it into zeros (src/train/optimizer.rs, `Sgd::zero_grad`).
#include <ATen/core/Tensor.h>

extern "C" {

/// `t` is the `at::Tensor*` behind a tch `Tensor` (its `as_mut_ptr`). Cannot throw.
void convtrain_grad_reset(at::Tensor* t) { t->mutable_grad().reset(); }

}  // extern "C"
