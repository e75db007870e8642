//! VGG with batch norm for 32×32 inputs as in the checkered-CNN repository's `models/vgg.py`
//! (checkered.md §5.5): configurations A/B/D/E (VGG-11/13/16/19), each conv 3×3/p1 with bias, BN,
//! ReLU; `M` = MaxPool(2, 2); classifier Dropout-Linear(512, 512)-ReLU-Dropout-Linear(512, 512)-ReLU-
//! Linear(512, classes). Dropout is elementwise with p = 0.5.
//!
//! Variables are named by their index in the original `nn.Sequential`s: `features.{i}` (conv at i, its
//! BN at i + 1, the ReLU at i + 2, a pool takes one index) and `classifier.{1,4,6}`.
//!
//! Initialisation as the original: conv weights ~ N(0, 2/(9·out_channels)), conv biases 0; BN and the
//! linear layers keep PyTorch 0.4's defaults (γ ~ U(0,1), β = 0; U(±1/√in) weight and bias).
//!
//! As a checkered CNN the five max-pools (zero padding is irrelevant: they have none) take the submap
//! count to 32 at 1×1 resolution; the mean over submaps gives the 512 features.
use super::layers::{torch04_batch_norm, torch_default_uniform, BatchNorm, Conv2d, ConvSpec, Grid, Linear};
use super::{checkered_arch, Arch, ModelConfig};
use crate::error::Result;
use crate::input_err;
use crate::models::pass::{Layer, Pass};
use tch::nn::{self, Init};
use tch::Tensor;

const ABOUT: &str = "VGG-BN for 32×32 inputs (checkered-CNN repository), --checkered converts it";

pub const ARCHS: &[Arch] = &[
    checkered_arch("vgg11-bn", ABOUT, build::<11>),
    checkered_arch("vgg13-bn", ABOUT, build::<13>),
    checkered_arch("vgg16-bn", ABOUT, build::<16>),
    checkered_arch("vgg19-bn", ABOUT, build::<19>),
];

/// 0 stands for a max-pool (`'M'`), anything else for a conv with that many channels.
pub fn config(depth: i64) -> Result<&'static [i64]> {
    Ok(match depth {
        11 => &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        13 => &[64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        16 => &[64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
        19 => &[64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0],
        _ => return Err(input_err!("VGG depth must be 11, 13, 16 or 19, got {depth}.")),
    })
}

#[derive(Debug)]
enum Feature {
    Conv(Box<(Conv2d, BatchNorm)>),
    Pool(String),
}

#[derive(Debug)]
pub struct Vgg {
    features: Vec<Feature>,
    classifier: [Linear; 3],
    grid: Grid,
}

impl Vgg {
    pub fn new(root: &nn::Path, depth: i64, cfg: &ModelConfig) -> Result<Vgg> {
        let layout = config(depth)?;
        if cfg.image_size != 32 {
            return Err(input_err!(
                "VGG here needs 32×32 inputs (five pools must leave a 1×1 map for Linear(512)), got {0}×{0}.",
                cfg.image_size
            ));
        }
        let grid = cfg.grid()?;
        let f = root / "features";
        let mut features = Vec::new();
        let mut index = 0;
        let mut cin = cfg.in_channels;
        for &v in layout {
            if v == 0 {
                features.push(Feature::Pool(format!("features.{index}")));
                index += 1;
            } else {
                let std = (2.0 / (9.0 * v as f64)).sqrt();
                let spec = ConvSpec::new(3)
                    .padding(1)
                    .bias(true)
                    .init(Init::Randn { mean: 0.0, stdev: std })
                    .bias_init(Init::Const(0.0))
                    .grid(grid);
                let conv = Conv2d::new(&(&f / index.to_string()), cin, v, spec);
                let bn = torch04_batch_norm(&(&f / (index + 1).to_string()), v);
                features.push(Feature::Conv(Box::new((conv, bn))));
                index += 3;
                cin = v;
            }
        }
        let c = root / "classifier";
        let linear = |i: &str, input: i64, output: i64| {
            Linear::new(&(&c / i), input, output, torch_default_uniform(input), None)
        };
        let classifier = [linear("1", 512, 512), linear("4", 512, 512), linear("6", 512, cfg.num_classes)];
        Ok(Vgg { features, classifier, grid })
    }
}

impl Layer for Vgg {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let mut y = self.grid.input(x);
        for f in &self.features {
            y = match f {
                Feature::Conv(layer) => layer.1.forward(&layer.0.forward(&y, pass), pass).relu(),
                Feature::Pool(name) => self.grid.max_pool2d(name, &y, 2, 2, 0, pass),
            };
        }
        let y = self.grid.merge_submaps(&y).flatten(1, -1);
        let y = self.classifier[0].forward(&y.dropout(0.5, pass.train), pass).relu();
        let y = self.classifier[1].forward(&y.dropout(0.5, pass.train), pass).relu();
        self.classifier[2].forward(&y, pass)
    }
}

fn build<const DEPTH: i64>(root: &nn::Path, cfg: &ModelConfig) -> Result<Box<dyn Layer>> {
    Ok(Box::new(Vgg::new(root, DEPTH, cfg)?))
}

#[cfg(test)]
mod tests {
    use crate::models::{test_config, Model};
    use tch::{Device, Kind, Tensor};

    #[test]
    fn vgg_bn_parameter_counts() {
        for (arch, c10, c100) in [
            ("vgg11-bn", 9_756_426, 9_802_596),
            ("vgg13-bn", 9_941_322, 9_987_492),
            ("vgg16-bn", 15_253_578, 15_299_748),
            ("vgg19-bn", 20_565_834, 20_612_004),
        ] {
            let count = |classes, checkered| {
                Model::build(&test_config(arch, classes, checkered, 3, 32), Device::Cpu).unwrap().num_parameters()
            };
            assert_eq!(count(10, false), c10, "{arch}");
            assert_eq!(count(100, false), c100, "{arch}");
            assert_eq!(count(100, true), c100, "{arch} checkered");
        }
    }

    #[test]
    fn converted_vgg11_ends_with_32_submaps_of_1x1() {
        tch::manual_seed(0);
        let m = Model::build(&test_config("vgg11-bn", 10, true, 3, 32), Device::Cpu).unwrap();
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (y, tr) = tch::no_grad(|| m.forward_traced(&x, false));
        assert_eq!(y.size(), vec![2, 10]);
        assert_eq!(tr.iter().find(|t| t.name == "features.3").unwrap().shape, vec![2, 64, 2, 16, 16]);
        assert_eq!(tr.iter().find(|t| t.name == "features.28").unwrap().shape, vec![2, 512, 32, 1, 1]);
        let v: std::collections::HashMap<String, Tensor> = m.named_variables().into_iter().collect();
        assert_eq!(f64::try_from(v["features.0.bias"].abs().sum(Kind::Float)).unwrap(), 0.0);
        assert!(v.contains_key("features.26.weight") && v.contains_key("classifier.6.bias"));
    }
}
