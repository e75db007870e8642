//! The forward pass, with its context passed explicitly through every layer: whether the network
//! trains (batch statistics, dropout) and, when asked for, the record of the layers it went
//! through, which `convtrain summary` prints and the VGG sweep counts its MACs from.
use tch::Tensor;

/// One layer's entry in a traced forward pass (see [`traced`]).
#[derive(Debug, Clone)]
pub struct LayerTrace {
    /// The layer's variable-store path, e.g. `stage_1.0.conv1`.
    pub name: String,
    /// `Conv2d`, `BatchNorm`, `Linear`, ...
    pub kind: &'static str,
    /// Output shape, batch dimension included.
    pub shape: Vec<i64>,
    /// Multiply-accumulates per image.
    pub macs: i64,
}

/// The context of one forward pass.
#[derive(Debug)]
pub struct Pass {
    /// Training mode: batch-norm uses and updates batch statistics, dropout is on.
    pub train: bool,
    /// The layers gone through so far, when this pass is traced.
    trace: Option<Vec<LayerTrace>>,
}

impl Pass {
    /// An untraced pass, as training and evaluation run.
    pub fn new(train: bool) -> Pass {
        Pass { train, trace: None }
    }

    /// Records a layer's output (its name, kind, shape and multiply-accumulates per image) when the
    /// pass is traced; free otherwise.
    pub fn record(&mut self, name: &str, kind: &'static str, out: &Tensor, macs: i64) {
        if let Some(v) = self.trace.as_mut() {
            v.push(LayerTrace { name: name.to_string(), kind, shape: out.size(), macs });
        }
    }
}

/// Runs `f` with a traced pass and returns its result with the layers it went through, in order.
pub fn traced<R>(train: bool, f: impl FnOnce(&mut Pass) -> R) -> (R, Vec<LayerTrace>) {
    let mut pass = Pass { train, trace: Some(Vec::new()) };
    let r = f(&mut pass);
    (r, pass.trace.unwrap_or_default())
}

/// A network or a layer of one. Unlike tch's `Module`/`ModuleT`, the forward pass takes its
/// context ([`Pass`]) explicitly.
pub trait Layer: std::fmt::Debug + Send {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn only_a_traced_pass_records_and_it_keeps_the_order() {
        let x = Tensor::zeros([3, 4, 5], (Kind::Float, Device::Cpu));
        let mut plain = Pass::new(true);
        plain.record("a", "Conv2d", &x, 7);
        assert!(plain.trace.is_none());
        let ((), tr) = traced(false, |p| {
            assert!(!p.train);
            p.record("a", "Conv2d", &x, 7);
            p.record("b", "Linear", &x.flatten(1, -1), 20);
        });
        let got: Vec<_> = tr.iter().map(|t| (t.name.as_str(), t.kind, t.shape.clone(), t.macs)).collect();
        assert_eq!(got, vec![("a", "Conv2d", vec![3, 4, 5], 7), ("b", "Linear", vec![3, 20], 20)]);
    }
}
