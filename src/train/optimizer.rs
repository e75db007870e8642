//! SGD with momentum, optional Nesterov, dampening and coupled L2 weight decay, with PyTorch's exact
//! update rule, written in Rust over the model's tensors so that its momentum buffers can be saved in
//! and restored from checkpoints (tch's C++ optimizer cannot be serialised; ecosystem.md §3.3).
use std::collections::{BTreeMap, BTreeSet};
use std::os::raw::c_int;
use tch::Tensor;

/// A set of parameters sharing one weight decay.
#[derive(Debug)]
pub struct ParamGroup {
    pub name: &'static str,
    pub weight_decay: f64,
    pub params: Vec<(String, Tensor)>,
}

impl ParamGroup {
    pub fn num_elements(&self) -> i64 {
        self.params.iter().map(|(_, t)| t.numel() as i64).sum()
    }
}

/// Which parameters get no weight decay.
#[derive(Debug, Clone, Default)]
pub struct DecayExclusion {
    /// Substrings of parameter names (SWRN: `coefficients`, as `group_weight_decay` in swrn.md §4).
    pub name_contains: Vec<String>,
    /// Every 1-D tensor (DiracNet, diracnet.md §5.3).
    pub one_dim: bool,
}

impl DecayExclusion {
    pub fn excludes(&self, name: &str, t: &Tensor) -> bool {
        (self.one_dim && t.dim() == 1) || self.name_contains.iter().any(|p| name.contains(p.as_str()))
    }
}

/// Splits named parameters into a `decay` and a `no_decay` group (empty groups are kept, so logs
/// always show both).
pub fn param_groups(params: Vec<(String, Tensor)>, weight_decay: f64, excl: &DecayExclusion) -> Vec<ParamGroup> {
    let (no, yes): (Vec<_>, Vec<_>) = params.into_iter().partition(|(n, t)| excl.excludes(n, t));
    vec![
        ParamGroup { name: "decay", weight_decay, params: yes },
        ParamGroup { name: "no_decay", weight_decay: 0.0, params: no },
    ]
}

#[derive(Debug)]
pub struct Sgd {
    pub groups: Vec<ParamGroup>,
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    /// Momentum buffers by parameter name; absent until a parameter's first step (as in PyTorch).
    buffers: BTreeMap<String, Tensor>,
    /// Parameters some backward pass of this process has reached (see [`Sgd::zero_grad`]).
    reached: BTreeSet<String>,
}

extern "C" {
    /// `csrc/grad.cpp`: drops the gradient of the `at::Tensor` behind a tch handle.
    fn convtrain_grad_reset(t: *mut torch_sys::C_tensor);
    /// `csrc/sgd.cpp`: one update of a float32 CPU parameter in one pass; 0 done, 1 not applicable.
    fn convtrain_sgd_step(
        p: *mut torch_sys::C_tensor,
        grad: *const torch_sys::C_tensor,
        buffer: *mut torch_sys::C_tensor,
        first: c_int,
        weight_decay: f64,
        momentum: f64,
        dampening: f64,
        nesterov: c_int,
        lr: f64,
    ) -> c_int;
}

impl Sgd {
    pub fn new(groups: Vec<ParamGroup>, momentum: f64, dampening: f64, nesterov: bool) -> Self {
        Sgd { groups, momentum, dampening, nesterov, buffers: BTreeMap::new(), reached: BTreeSet::new() }
    }

    /// Every parameter the optimizer updates, group by group.
    pub fn parameters(&self) -> impl Iterator<Item = &Tensor> {
        self.groups.iter().flat_map(|g| g.params.iter().map(|(_, p)| p))
    }

    /// Drops every gradient (PyTorch 2's `zero_grad()`, `set_to_none`), so that the next backward pass
    /// stores its gradients instead of adding them into zeros — for VGG-features #193 (13.8 M
    /// parameters, 0.15 GMACs per image) zeroing in place made PyTorch's own step 1.05× slower. The
    /// originals (PyTorch 0.4) zeroed in place, so a parameter that has had a gradient keeps being
    /// stepped, with a zero gradient (weight decay and momentum go on), in a step whose backward pass
    /// does not reach it: [`Sgd::step`] does exactly that for the parameters named in `reached`.
    pub fn zero_grad(&mut self) {
        for g in &mut self.groups {
            for (name, p) in &mut g.params {
                if p.grad().defined() {
                    if !self.reached.contains(name.as_str()) {
                        self.reached.insert(name.clone());
                    }
                    // SAFETY: `as_mut_ptr` is the live `at::Tensor` of this tch handle.
                    unsafe { convtrain_grad_reset(p.as_mut_ptr()) };
                }
            }
        }
    }

    /// One update with learning rate `lr`: d = g + wd·p; buf = m·buf + (1−dampening)·d (buf = d on
    /// the first step); d = d + m·buf (Nesterov) or buf; p −= lr·d. Each value is computed with the
    /// same float operations as written, every product and sum rounded on its own (no fused
    /// multiply-adds: PyTorch 0.4's CPU kernels, which the originals ran, rounded each). A float32 CPU
    /// parameter is updated in one pass over its memory (`csrc/sgd.cpp`); any other (CUDA, another
    /// layout of gradient or buffer) with the same operations on tensors, in place wherever `d` is a
    /// tensor of the step's own — the same bits either way.
    pub fn step(&mut self, lr: f64) {
        tch::no_grad(|| {
            for g in &mut self.groups {
                let rule = Rule {
                    weight_decay: g.weight_decay,
                    momentum: self.momentum,
                    dampening: self.dampening,
                    nesterov: self.nesterov,
                    lr,
                };
                for (name, p) in &mut g.params {
                    let grad = p.grad();
                    let grad = if grad.defined() {
                        Some(grad)
                    } else if self.reached.contains(name.as_str()) {
                        None
                    } else {
                        continue;
                    };
                    if !rule.step_in_one_pass(p, grad.as_ref(), &mut self.buffers, name) {
                        let grad = grad.unwrap_or_else(|| p.zeros_like());
                        rule.step_with_tensor_ops(p, grad, &mut self.buffers, name);
                    }
                }
            }
        });
    }

    /// Forgets all momentum (DiracNet re-creates its optimizer at each lr drop, diracnet.md §5.4).
    pub fn reset_momentum(&mut self) {
        self.buffers.clear();
    }

    /// Momentum buffers, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.buffers.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect()
    }

    /// Restores buffers saved by [`Sgd::state`]; names must be parameters of this optimizer. Each
    /// buffer is copied into its parameter's layout and device (a checkpoint holds contiguous
    /// tensors; `--channels-last` weights are not), so that the one-pass update applies to it.
    pub fn load_state(&mut self, state: Vec<(String, Tensor)>) -> crate::Result<()> {
        let known: BTreeMap<&str, &Tensor> =
            self.groups.iter().flat_map(|g| g.params.iter().map(|(n, t)| (n.as_str(), t))).collect();
        let mut buffers = BTreeMap::new();
        for (name, t) in state {
            match known.get(name.as_str()) {
                Some(p) if p.size() == t.size() => {
                    let mut buffer = p.empty_like();
                    buffer.copy_(&t);
                    buffers.insert(name, buffer);
                }
                _ => {
                    return Err(crate::input_err!(
                        "checkpoint: momentum buffer '{name}' does not match any parameter of the model."
                    ))
                }
            }
        }
        self.buffers = buffers;
        Ok(())
    }
}

/// The settings of one parameter's update (see [`Sgd::step`]).
#[derive(Debug, Clone, Copy)]
struct Rule {
    weight_decay: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    lr: f64,
}

impl Rule {
    /// The update in one pass (`csrc/sgd.cpp`); false, with nothing changed, where that kernel does
    /// not apply. `grad` None is a zero gradient.
    fn step_in_one_pass(
        &self,
        p: &mut Tensor,
        grad: Option<&Tensor>,
        buffers: &mut BTreeMap<String, Tensor>,
        name: &str,
    ) -> bool {
        let grad_ptr = grad.map_or(std::ptr::null(), |g| g.as_ptr());
        let (mut buffer, first) = match buffers.get(name) {
            _ if self.momentum == 0.0 => (None, false),
            Some(b) => (Some(b.shallow_clone()), false),
            // Written by the kernel (buf = d), in the parameter's layout.
            None => (Some(p.empty_like()), true),
        };
        let buffer_ptr = buffer.as_mut().map_or(std::ptr::null_mut(), |b| b.as_mut_ptr());
        // SAFETY: every pointer is null or the live `at::Tensor` of a tch handle held for the call.
        let done = unsafe {
            convtrain_sgd_step(
                p.as_mut_ptr(),
                grad_ptr,
                buffer_ptr,
                first as c_int,
                self.weight_decay,
                self.momentum,
                self.dampening,
                self.nesterov as c_int,
                self.lr,
            )
        } == 0;
        if done && first {
            if let Some(b) = buffer {
                buffers.insert(name.to_string(), b);
            }
        }
        done
    }

    /// The same update with tensor operations.
    fn step_with_tensor_ops(&self, p: &mut Tensor, grad: Tensor, buffers: &mut BTreeMap<String, Tensor>, name: &str) {
        // `owned`: d is a fresh tensor (not the gradient, not a momentum buffer).
        let (mut d, mut owned) = if self.weight_decay != 0.0 {
            // wd·p + g: the same sum as g + wd·p.
            let mut d = &*p * self.weight_decay;
            let _ = d.g_add_(&grad);
            (d, true)
        } else {
            (grad, false)
        };
        if self.momentum != 0.0 {
            let buf = match buffers.get_mut(name) {
                Some(b) => {
                    let _ = b.g_mul_scalar_(self.momentum);
                    // (1 − 0)·d is d itself.
                    let _ = if self.dampening == 0.0 { b.g_add_(&d) } else { b.g_add_(&(&d * (1.0 - self.dampening))) };
                    b.shallow_clone()
                }
                None => {
                    let b = d.detach().copy();
                    buffers.insert(name.to_string(), b.shallow_clone());
                    b
                }
            };
            (d, owned) = match (self.nesterov, owned) {
                (true, true) => {
                    let _ = d.g_add_(&(buf * self.momentum));
                    (d, true)
                }
                (true, false) => (d + buf * self.momentum, true),
                (false, _) => (buf, false),
            };
        }
        if owned {
            let _ = d.g_mul_scalar_(self.lr);
            let _ = p.g_sub_(&d);
        } else {
            let _ = p.g_sub_(&(d * self.lr));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn param(v: &[f32]) -> Tensor {
        Tensor::from_slice(v).set_requires_grad(true)
    }

    /// (weight decay, momentum, dampening, Nesterov): every combination the update distinguishes.
    const SETTINGS: [(f64, f64, f64, bool); 8] = [
        (5e-4, 0.9, 0.0, true),
        (5e-4, 0.9, 0.0, false),
        (0.0, 0.9, 0.0, true),
        (0.0, 0.9, 0.0, false),
        (1e-4, 0.9, 0.3, true),
        (1e-4, 0.9, 0.3, false),
        (5e-4, 0.0, 0.0, false),
        (0.0, 0.0, 0.0, false),
    ];

    fn set_grad(p: &Tensor, g: &[f32]) {
        // loss = <g, p> has gradient g.
        let l = (p * Tensor::from_slice(g)).sum(Kind::Float);
        l.backward();
    }

    #[test]
    fn in_place_steps_are_bit_identical_to_the_rule_as_written() {
        // The rule computed naively, one fresh tensor per operation, against `Sgd::step`, over three
        // steps of every combination of decay, momentum, dampening and Nesterov.
        for (wd, momentum, dampening, nesterov) in SETTINGS {
            tch::manual_seed(11);
            let p = Tensor::randn([257], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            let mut sgd = Sgd::new(
                vec![ParamGroup { name: "g", weight_decay: wd, params: vec![("w".into(), p.shallow_clone())] }],
                momentum,
                dampening,
                nesterov,
            );
            let mut naive = p.detach().copy();
            let mut buf: Option<Tensor> = None;
            for step in 0..3 {
                let g = Tensor::randn([257], (Kind::Float, Device::Cpu));
                set_grad(&p, &Vec::<f32>::try_from(&g).unwrap());
                sgd.step(0.05);
                sgd.zero_grad();
                let mut d = if wd != 0.0 { &g + &naive * wd } else { g };
                if momentum != 0.0 {
                    let b = match buf.take() {
                        Some(b) => b * momentum + &d * (1.0 - dampening),
                        None => d.copy(),
                    };
                    d = if nesterov { d + &b * momentum } else { b.copy() };
                    buf = Some(b);
                }
                naive -= d * 0.05;
                assert!(
                    p.detach().equal(&naive),
                    "wd {wd} m {momentum} damp {dampening} nesterov {nesterov} step {step}"
                );
            }
        }
    }

    #[test]
    fn the_one_pass_update_is_the_tensor_operations_bit_for_bit() {
        // Both paths of a step on the same values, every setting, a tensor of one
        // chunk and one of several (the kernel splits at 32 768 elements), a first step (the buffer
        // written), a step without a gradient (a reached parameter) and a third step.
        for (weight_decay, momentum, dampening, nesterov) in SETTINGS {
            let rule = Rule { weight_decay, momentum, dampening, nesterov, lr: 0.05 };
            for n in [257, 100_003] {
                tch::manual_seed(3);
                let mut one_pass = Tensor::randn([n], (Kind::Float, Device::Cpu));
                let mut tensor_ops = one_pass.copy();
                let (mut one_pass_buffers, mut tensor_ops_buffers) = (BTreeMap::new(), BTreeMap::new());
                for step in 0..3 {
                    let grad = (step != 1).then(|| Tensor::randn([n], (Kind::Float, Device::Cpu)));
                    assert!(rule.step_in_one_pass(&mut one_pass, grad.as_ref(), &mut one_pass_buffers, "w"));
                    let grad = grad.unwrap_or_else(|| tensor_ops.zeros_like());
                    rule.step_with_tensor_ops(&mut tensor_ops, grad, &mut tensor_ops_buffers, "w");
                    let case = format!("{rule:?}, {n} elements, step {step}");
                    assert!(one_pass.equal(&tensor_ops), "{case}: parameters differ");
                    assert_eq!(one_pass_buffers.len(), tensor_ops_buffers.len(), "{case}");
                    for (name, b) in &one_pass_buffers {
                        assert!(b.equal(&tensor_ops_buffers[name]), "{case}: momentum buffers differ");
                    }
                }
            }
        }
    }

    #[test]
    fn the_one_pass_update_declines_what_it_does_not_cover_and_bumps_versions() {
        let rule = Rule { weight_decay: 5e-4, momentum: 0.9, dampening: 0.0, nesterov: true, lr: 0.1 };
        let mut buffers = BTreeMap::new();
        // float64, and a gradient laid out unlike its parameter: declined, nothing written.
        let mut p64 = Tensor::ones([4], (Kind::Double, Device::Cpu));
        let g64 = p64.ones_like();
        assert!(!rule.step_in_one_pass(&mut p64, Some(&g64), &mut buffers, "w"));
        let mut p = Tensor::ones([3, 5], (Kind::Float, Device::Cpu));
        let transposed = Tensor::ones([5, 3], (Kind::Float, Device::Cpu)).tr();
        assert!(!rule.step_in_one_pass(&mut p, Some(&transposed), &mut buffers, "w"));
        assert!(p64.equal(&p64.ones_like()) && p.equal(&p.ones_like()) && buffers.is_empty());
        // A step changes the parameter's and the buffer's version, as in-place operations do: the
        // evaluation kernel cache (models::kernel_cache) keys on it.
        let before = p.internal_version();
        let g = p.ones_like();
        assert!(rule.step_in_one_pass(&mut p, Some(&g), &mut buffers, "w"));
        let buffer_version = buffers["w"].internal_version();
        assert!(p.internal_version() > before);
        assert!(rule.step_in_one_pass(&mut p, None, &mut buffers, "w"));
        assert!(buffers["w"].internal_version() > buffer_version);
    }

    #[test]
    fn restored_buffers_take_their_parameters_layout() {
        // A channels-last weight and a contiguous buffer from a checkpoint: the restored buffer has the
        // weight's strides and the saved values, so the one-pass update takes it.
        let w = Tensor::randn([4, 2, 2, 3], (Kind::Float, Device::Cpu)).permute([0, 3, 1, 2]).set_requires_grad(true);
        let mut sgd = Sgd::new(
            vec![ParamGroup { name: "decay", weight_decay: 5e-4, params: vec![("w".into(), w.shallow_clone())] }],
            0.9,
            0.0,
            true,
        );
        let saved = Tensor::randn([4, 3, 2, 2], (Kind::Float, Device::Cpu));
        sgd.load_state(vec![("w".into(), saved.copy())]).unwrap();
        let (_, restored) = &sgd.state()[0];
        assert_eq!(restored.stride(), w.stride());
        assert_ne!(saved.stride(), w.stride());
        assert!(restored.equal(&saved) && !restored.requires_grad());
        let rule = Rule { weight_decay: 5e-4, momentum: 0.9, dampening: 0.0, nesterov: true, lr: 0.1 };
        let mut param = w.detach();
        let grad = param.ones_like();
        assert!(rule.step_in_one_pass(&mut param, Some(&grad), &mut sgd.buffers, "w"));
    }

    #[test]
    fn dropped_gradients_step_as_zeroed_ones_did() {
        // `a` is reached by every backward pass, `b` only by the first, `c` by none. Against the
        // originals' semantics written out (gradients zeroed in place, never dropped): after
        // zero_grad every gradient is gone, the next backward stores fresh ones, `b` goes on being
        // stepped with a zero gradient (decay and momentum) and `c` is never stepped.
        let (a, b, c) = (param(&[1.0, -2.0]), param(&[3.0]), param(&[5.0]));
        let group = |params: Vec<(&str, &Tensor)>| ParamGroup {
            name: "decay",
            weight_decay: 0.1,
            params: params.into_iter().map(|(n, t)| (n.to_string(), t.shallow_clone())).collect(),
        };
        let mut sgd = Sgd::new(vec![group(vec![("a", &a), ("b", &b), ("c", &c)])], 0.9, 0.0, true);
        let (ra, rb) = (a.detach().copy().set_requires_grad(true), b.detach().copy().set_requires_grad(true));
        let mut reference = Sgd::new(vec![group(vec![("a", &ra), ("b", &rb)])], 0.9, 0.0, true);
        for step in 0..4 {
            let g = [0.5 + step as f32, -0.25];
            set_grad(&a, &g);
            set_grad(&ra, &g);
            if step == 0 {
                set_grad(&b, &[2.0]);
                set_grad(&rb, &[2.0]);
            } else {
                // What zeroing in place leaves: a zero gradient for the unreached parameter.
                set_grad(&rb, &[0.0]);
            }
            sgd.step(0.1);
            reference.step(0.1);
            sgd.zero_grad();
            for t in [&a, &b, &c] {
                assert!(!t.grad().defined(), "step {step}: a gradient survived zero_grad");
            }
            for r in [&ra, &rb] {
                let _ = r.grad().zero_();
            }
            assert!(a.detach().equal(&ra.detach()) && b.detach().equal(&rb.detach()), "step {step}");
            assert_eq!(f64::try_from(&c).unwrap(), 5.0, "c was stepped without ever having a gradient");
        }
    }

    #[test]
    fn nesterov_step_matches_hand_computation() {
        // p=1, g=0.5, wd=0.1, m=0.9, lr=0.1: d = 0.5+0.1 = 0.6; buf = 0.6; nesterov d = 0.6+0.54 = 1.14;
        // p = 1 − 0.114 = 0.886. Second step with g=0.5: d = 0.5+0.0886 = 0.5886; buf = 0.54+0.5886 =
        // 1.1286; d = 0.5886 + 1.01574 = 1.60434; p = 0.886 − 0.160434 = 0.725566.
        let p = param(&[1.0]);
        let mut sgd = Sgd::new(
            vec![ParamGroup { name: "decay", weight_decay: 0.1, params: vec![("w".into(), p.shallow_clone())] }],
            0.9,
            0.0,
            true,
        );
        set_grad(&p, &[0.5]);
        sgd.step(0.1);
        assert!((f64::try_from(&p).unwrap() - 0.886).abs() < 1e-6);
        sgd.zero_grad();
        set_grad(&p, &[0.5]);
        sgd.step(0.1);
        assert!((f64::try_from(&p).unwrap() - 0.725566).abs() < 1e-6);
    }

    #[test]
    fn plain_momentum_with_dampening() {
        // m=0.9, dampening 0.5, no wd, lr 1: step1 buf=g=1 → p=−1; step2 buf=0.9+0.5=1.4 → p=−2.4.
        let p = param(&[0.0]);
        let mut sgd = Sgd::new(
            vec![ParamGroup { name: "decay", weight_decay: 0.0, params: vec![("w".into(), p.shallow_clone())] }],
            0.9,
            0.5,
            false,
        );
        for _ in 0..2 {
            sgd.zero_grad();
            set_grad(&p, &[1.0]);
            sgd.step(1.0);
        }
        assert!((f64::try_from(&p).unwrap() + 2.4).abs() < 1e-6);
    }

    #[test]
    fn excluded_parameters_are_not_decayed_and_state_round_trips() {
        let a = param(&[1.0, 1.0]);
        let coeff = param(&[1.0]);
        let excl = DecayExclusion { name_contains: vec!["coefficients".into()], one_dim: false };
        let groups = param_groups(
            vec![("conv.weight".into(), a.shallow_clone()), ("conv.coefficients".into(), coeff.shallow_clone())],
            0.5,
            &excl,
        );
        assert_eq!(groups[1].params[0].0, "conv.coefficients");
        let mut sgd = Sgd::new(groups, 0.9, 0.0, true);
        // Zero gradients everywhere: weight decay alone moves the decayed tensor, not the excluded one.
        set_grad(&a, &[0.0, 0.0]);
        set_grad(&coeff, &[0.0]);
        sgd.step(0.1);
        assert_eq!(f64::try_from(&coeff).unwrap(), 1.0);
        assert!(f64::try_from(a.get(0)).unwrap() < 1.0);
        let st = sgd.state();
        assert_eq!(st.len(), 2);
        let mut fresh = Sgd::new(
            vec![ParamGroup {
                name: "decay",
                weight_decay: 0.0,
                params: vec![
                    ("conv.weight".into(), a.shallow_clone()),
                    ("conv.coefficients".into(), coeff.shallow_clone()),
                ],
            }],
            0.9,
            0.0,
            true,
        );
        fresh.load_state(st).unwrap();
        assert!(fresh.load_state(vec![("nope".into(), Tensor::zeros([1], (Kind::Float, Device::Cpu)))]).is_err());
        let one_d = DecayExclusion { name_contains: vec![], one_dim: true };
        assert!(one_d.excludes("bn.weight", &coeff) && !one_d.excludes("conv.weight", &a.view([1, 2])));
    }
}
