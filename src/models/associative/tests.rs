use super::*;
use std::path::Path;

fn cfg(arch: &str, depth: Option<i64>, width: Option<i64>, classes: i64) -> ModelConfig {
    ModelConfig { depth, width, ..ModelConfig::new(arch, classes, 3, 32) }
}

fn with_slice(c: ModelConfig, slice: [i64; 4], code: i64) -> ModelConfig {
    c.with_option("slice", slice.to_vec()).with_option("code_size", code)
}

fn count(c: &ModelConfig) -> i64 {
    Model::build(c, Device::Cpu).unwrap().num_parameters()
}

fn max_abs(t: &Tensor) -> f64 {
    f64::try_from(t.abs().max()).unwrap()
}

/// A model with non-trivial BN statistics and affine parameters.
fn perturbed(c: &ModelConfig) -> Model {
    let m = Model::build(c, Device::Cpu).unwrap();
    tch::no_grad(|| {
        for _ in 0..2 {
            let x = Tensor::randn([4, c.in_channels, c.image_size, c.image_size], (Kind::Float, Device::Cpu)) + 0.3;
            let _ = m.forward_t(&x, true);
        }
        for (_, mut t) in m.named_parameters() {
            if t.dim() == 1 {
                let noise = t.randn_like() * 0.2;
                t += noise;
            }
        }
    });
    m
}

#[test]
fn cifar_counts_match_associative_md_3_1_and_3_2() {
    let resnet = |d| cfg("csg-resnet", Some(d), None, 10);
    let org = |d| cfg("csg-resnet-org", Some(d), None, 10);
    let dense = |k| cfg("csg-densenet", Some(40), Some(k), 10);
    let dense_org = |k| cfg("csg-densenet-org", Some(40), Some(k), 10);
    let table = [
        (org(20), 269_722),
        (with_slice(resnet(20), [16, 16, 3, 3], 72), 176_698),
        (resnet(20), 115_426),
        (with_slice(resnet(20), [16, 16, 3, 3], 128), 312_218),
        (org(56), 853_018),
        (resnet(56), 160_450),
        (with_slice(resnet(56), [12, 12, 3, 3], 72), 160_450),
        (with_slice(resnet(56), [16, 16, 3, 3], 128), 347_162),
        (org(110), 1_727_962),
        (resnet(110), 227_986),
        (dense_org(36), 1_542_682),
        (dense(36), 842_842),
        (dense_org(48), 2_733_130),
        (dense(48), 1_416_394),
        // The architectures' defaults: ResNet-56 and DenseNet-BC-40-48 with [12,12,3,3]-72.
        (cfg("csg-resnet", None, None, 10), 160_450),
        (cfg("csg-densenet", None, None, 10), 1_416_394),
    ];
    for (c, want) in table {
        assert_eq!(count(&c), want, "{c:?}");
    }
}

#[test]
fn imagenet_counts_match_associative_md_3_4() {
    for (arch, want) in [
        ("csg-resnet50-org", 25_557_032),
        ("csg-resnet50", 15_163_432),
        ("csg-resnet18-org", 15_995_176),
        ("csg-resnet18", 10_371_368),
        ("csg-resnet18-basic-org", 11_689_512),
        ("csg-resnet18-basic", 7_527_976),
        ("csg-resnet101-org", 44_549_160),
        ("csg-resnet101", 24_685_608),
    ] {
        let c = ModelConfig::new(arch, 1000, 3, 224);
        assert_eq!(count(&c), want, "{arch}");
    }
}

/// Counts associative.md does not list, from scripts/crosscheck_csg.py --self-check.
#[test]
fn counts_the_spec_does_not_list_match_the_pytorch_script() {
    let resnet = |d| cfg("csg-resnet", Some(d), None, 10);
    let table = [
        (cfg("csg-resnet-org", Some(32), None, 10), 464_154),
        (resnet(32), 130_434),
        (resnet(44), 145_442),
        (with_slice(resnet(56), [16, 16, 3, 3], 72), 197_530),
        (with_slice(resnet(110), [16, 16, 3, 3], 128), 399_578),
        (ModelConfig { depth: Some(20), ..ModelConfig::new("csg-resnet", 10, 1, 28) }, 115_138),
        (cfg("csg-resnet", Some(20), None, 100), 121_276),
        (cfg("csg-densenet", Some(40), Some(12), 10), 181_306),
        (cfg("csg-densenet-org", Some(100), Some(12), 10), 769_162),
        (cfg("csg-densenet", Some(100), Some(12), 10), 627_466),
        (with_slice(cfg("csg-densenet", Some(40), Some(48), 10), [16, 16, 3, 3], 128), 1_617_994),
        (with_slice(cfg("csg-densenet", Some(40), Some(36), 10), [16, 16, 3, 3], 72), 903_754),
        (ModelConfig::new("csg-resnet152-org", 1000, 3, 224), 60_192_808),
        (ModelConfig::new("csg-resnet152", 1000, 3, 224), 32_530_472),
        (with_slice(ModelConfig::new("csg-resnet50", 1000, 3, 224), [12, 12, 3, 3], 72), 14_984_192),
    ];
    for (c, want) in table {
        assert_eq!(count(&c), want, "{c:?}");
    }
}

#[test]
fn compression_parts_frozen_generator_and_ratio() {
    let c = Compression::of(&Model::build(&cfg("csg-resnet", Some(56), None, 10), Device::Cpu).unwrap()).unwrap();
    assert_eq!((c.generator, c.codes, c.rest, c.baseline), (93_312, 61_992, 5_146, 853_018));
    assert_eq!((c.generated_convs, c.generator_frozen, c.total()), (54, false, 160_450));
    assert_eq!(format!("{:.2}", c.ratio()), "5.32");
    // A reused generator with --freeze-csg: saved, but not a parameter any more (§3.1: 160,450 − 93,312).
    let frozen =
        cfg("csg-resnet", Some(56), None, 10).with_option("csg_from", "elsewhere").with_option("freeze_csg", true);
    let m = Model::build(&frozen, Device::Cpu).unwrap();
    assert_eq!(m.num_parameters(), 67_138);
    assert!(m.named_parameters().iter().all(|(n, _)| n != GENERATOR));
    assert!(m.named_variables().iter().any(|(n, t)| n == GENERATOR && !t.requires_grad()));
    let c = Compression::of(&m).unwrap();
    assert_eq!((c.generator_frozen, c.total()), (true, 160_450));
    let report = compression_report(&m).unwrap();
    for needle in ["[12,12,3,3]-72", "93,312 (frozen", "54 generated", "61,992", "5,146", "160,450", "853,018", "5.32x"]
    {
        assert!(report.contains(needle), "{needle}: {report}");
    }
    // DenseNet-BC-40-48 with the binary generator: 1,323,082 trainable (§3.2).
    let binary = cfg("csg-densenet", None, None, 10).with_option("csg_init", "binary");
    assert_eq!(count(&binary), 1_323_082);
    let m = Model::build(&ModelConfig::new("csg-resnet50", 1000, 3, 224), Device::Cpu).unwrap();
    assert_eq!(format!("{:.2}", Compression::of(&m).unwrap().ratio()), "1.69");
}

#[test]
fn variables_carry_the_authors_names() {
    let names = |c: &ModelConfig| -> BTreeSet<String> {
        Model::build(c, Device::Cpu).unwrap().named_variables().into_iter().map(|(n, _)| n).collect()
    };
    let csg = names(&cfg("csg-resnet", Some(20), None, 10));
    for n in [
        "CSG.weight",
        "conv_1_3x3.weight",
        "bn_1.running_var",
        "stage_2.0.code",
        "stage_2.0.code2",
        "stage_3.2.bn_b.bias",
        "classifier.bias",
    ] {
        assert!(csg.contains(n), "{n}");
    }
    assert!(!csg.iter().any(|n| n.contains("conv_a") || n.contains("downsample")));
    let org = names(&cfg("csg-resnet-org", Some(20), None, 10));
    assert!(org.contains("stage_1.0.conv_a.weight") && org.contains("stage_3.2.conv_b.weight"));
    assert!(!org.iter().any(|n| n.contains("CSG") || n.contains("code")));
    let dense = names(&cfg("csg-densenet", Some(40), Some(12), 10));
    for n in [
        "conv1.weight",
        "dense1.0.code2",
        "dense3.5.conv1.weight",
        "trans2.conv.weight",
        "trans3.bn.weight",
        "linear.bias",
    ] {
        assert!(dense.contains(n), "{n}");
    }
    assert!(!dense.contains("trans3.conv.weight"));
    let imagenet = names(&ModelConfig::new("csg-resnet18", 10, 3, 64));
    for n in [
        "conv1.weight",
        "bn1.bias",
        "layer1.0.conv1.weight",
        "layer1.0.code2",
        "layer1.0.conv3.weight",
        "layer2.0.downsample.0.weight",
        "fc.weight",
    ] {
        assert!(imagenet.contains(n), "{n}");
    }
    let basic = names(&ModelConfig::new("csg-resnet18-basic", 10, 3, 64));
    assert!(
        basic.contains("layer4.1.code1")
            && basic.contains("layer4.1.conv2.weight")
            && !basic.contains("layer4.1.conv1.weight")
    );
}

#[test]
fn initialisations_follow_associative_md_2_3() {
    tch::manual_seed(11);
    let v: HashMap<String, Tensor> = Model::build(&cfg("csg-resnet", Some(56), None, 10), Device::Cpu)
        .unwrap()
        .named_variables()
        .into_iter()
        .collect();
    let stats = |t: &Tensor| (f64::try_from(t.mean(Kind::Float)).unwrap(), f64::try_from(t.std(true)).unwrap());
    // Codes N(0.001, 1) — normal_(1/1000) sets the mean — over all 61,992 entries.
    let codes = Tensor::cat(
        &v.iter().filter(|(n, _)| code_block(n).is_some()).map(|(_, t)| t.flatten(0, -1)).collect::<Vec<_>>(),
        0,
    );
    let (mean, std) = stats(&codes);
    assert!((mean - 0.001).abs() < 0.012 && (std - 1.0).abs() < 0.01, "{mean} {std}");
    let (_, std) = stats(&v[GENERATOR]);
    assert!((std - (2.0f64 / 72.0).sqrt()).abs() < 0.003, "{std}");
    let (_, std) = stats(&v["conv_1_3x3.weight"]);
    assert!((std - (2.0f64 / (9.0 * 16.0)).sqrt()).abs() < 0.02, "{std}");
    assert_eq!(max_abs(&v["classifier.bias"]), 0.0);
    assert!(v["stage_1.0.bn_a.weight"].eq(1.0).all().try_into().unwrap_or(false));

    let v: HashMap<String, Tensor> = Model::build(&cfg("csg-densenet", Some(40), Some(12), 10), Device::Cpu)
        .unwrap()
        .named_variables()
        .into_iter()
        .collect();
    let (mean, std) = stats(&v["dense2.0.code2"].flatten(0, -1));
    assert!(mean.abs() < 0.2 && (std - 1.0).abs() < 0.15, "{mean} {std}");
    assert!(max_abs(&v[GENERATOR]) <= 1.0 / 72f64.sqrt());
    assert!(max_abs(&v["trans1.conv.weight"]) <= 1.0 / (v["trans1.conv.weight"].size()[1] as f64).sqrt());
}

#[test]
fn one_generator_drives_every_generated_convolution() {
    tch::manual_seed(1);
    let c = cfg("csg-resnet", Some(8), None, 10);
    let m = Model::build(&c, Device::Cpu).unwrap();
    let before = generated_kernels(&m.named_variables(), &c).unwrap();
    assert_eq!(before.len(), 6);
    assert_eq!(m.named_variables().iter().filter(|(n, _)| n.contains("CSG")).count(), 1);
    tch::no_grad(|| {
        let mut w = m.vs.variables().remove(GENERATOR).unwrap();
        let _ = w.g_mul_scalar_(2.0);
    });
    // Each forward pass regenerates every kernel from the one (now doubled) generator.
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let (_, trace) = tch::no_grad(|| m.forward_traced(&x, false));
    let generated: Vec<&str> =
        trace.iter().filter(|t| code_block(&t.name).is_some()).map(|t| t.name.as_str()).collect();
    assert_eq!(generated.len(), 6, "{generated:?}");
    for ((name, a), (_, b)) in before.iter().zip(generated_kernels(&m.named_variables(), &c).unwrap()) {
        assert!(max_abs(&(a * 2.0 - b)) < 1e-5, "{name}");
    }
}

#[test]
fn materialized_baseline_gives_the_same_logits() {
    tch::manual_seed(5);
    for c in [
        cfg("csg-resnet", Some(8), None, 10),
        with_slice(cfg("csg-resnet", Some(8), None, 10), [16, 16, 3, 3], 128),
        cfg("csg-densenet", Some(10), Some(12), 10),
        ModelConfig::new("csg-resnet18-basic", 10, 3, 32),
    ] {
        let m = perturbed(&c);
        let x = Tensor::randn([3, 3, 32, 32], (Kind::Float, Device::Cpu));
        let want = tch::no_grad(|| m.forward_t(&x, false));
        let (plain_cfg, plain) = materialize(&m.named_variables(), &c).unwrap();
        assert_eq!(plain_cfg.arch, format!("{}-org", c.arch));
        assert!(plain_cfg.options.is_empty());
        let org = Model::build(&plain_cfg, Device::Cpu).unwrap();
        org.load_named(&plain, Path::new("materialized"), None).unwrap();
        assert_eq!(plain.len(), org.named_variables().len());
        let got = tch::no_grad(|| org.forward_t(&x, false));
        assert!(max_abs(&(&got - &want)) / max_abs(&want) < 1e-5, "{}", c.arch);
    }
}

#[test]
fn pytorch_names_round_trip_through_the_authors_variants() {
    tch::manual_seed(2);
    let c = cfg("csg-resnet", Some(8), None, 10);
    let m = perturbed(&c);
    let ours = m.named_variables();
    let theirs = to_pytorch_names(&ours, &ExportRequest { config: &c, naming: None }).unwrap();
    let keys: BTreeSet<&str> = theirs.iter().map(|(n, _)| n.as_str()).collect();
    for k in [
        "CSG.weight",
        "stage_1.0.CSG.weight",
        "stage_3.0.CSG.weight",
        "stage_2.0.code2",
        "bn_1.num_batches_tracked",
        "stage_2.0.bn_b.num_batches_tracked",
    ] {
        assert!(keys.contains(k), "{k}");
    }
    // 3 blocks with codes, each with one alias; 7 BNs with a counter.
    assert_eq!(theirs.len(), ours.len() + 3 + 7);
    // Back: with DataParallel's prefix, the older CLG spelling, only the aliases, fp16.
    let variants: Vec<NamedTensors> = vec![
        theirs.iter().map(|(n, t)| (format!("module.{n}"), t.shallow_clone())).collect(),
        theirs
            .iter()
            .filter(|(n, _)| n != GENERATOR)
            .map(|(n, t)| (n.replace("CSG", "CLG"), t.shallow_clone()))
            .collect(),
        theirs
            .iter()
            .map(|(n, t)| (n.clone(), if t.is_floating_point() { t.to_kind(Kind::Half) } else { t.shallow_clone() }))
            .collect(),
    ];
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let want = tch::no_grad(|| m.forward_t(&x, false));
    for (i, v) in variants.into_iter().enumerate() {
        let back = import_csg(v).unwrap();
        assert_eq!(
            back.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ours.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()
        );
        let fresh = Model::build(&c, Device::Cpu).unwrap();
        fresh.load_named(&back, Path::new("back"), None).unwrap();
        let got = tch::no_grad(|| fresh.forward_t(&x, false));
        let tol = if i == 2 { 5e-2 } else { 0.0 };
        assert!(max_abs(&(&got - &want)) <= tol * max_abs(&want), "variant {i}");
    }
    // Aliases that disagree are not one network's generator.
    let mut bad = theirs.iter().map(|(n, t)| (n.clone(), t.copy())).collect::<Vec<_>>();
    let alias = bad.iter_mut().find(|(n, _)| n == "stage_2.0.CSG.weight").unwrap();
    alias.1 = alias.1.zeros_like();
    assert!(import_csg(bad).unwrap_err().to_string().contains("stage_2.0.CSG.weight"));
}

#[test]
fn the_imports_refuse_the_other_kind_of_network() {
    let names = |arch: &str| {
        let c = cfg(arch, Some(8), None, 10);
        let named = Model::build(&c, Device::Cpu).unwrap().named_variables();
        to_pytorch_names(&named, &ExportRequest { config: &c, naming: None }).unwrap()
    };
    let (csg, org) = (names("csg-resnet"), names("csg-resnet-org"));
    let e = import_csg(org.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect()).unwrap_err().to_string();
    assert!(e.contains("no slice generator") && e.contains("conv_a.weight") && e.contains("-org"), "{e}");
    let e = import_baseline(csg).unwrap_err().to_string();
    assert!(e.contains("CSG network") && e.contains("--materialize"), "{e}");
    assert!(import_baseline(org).is_ok());
}

#[test]
fn checkered_csg_resnet_runs_its_generated_kernels_checkered() {
    tch::manual_seed(0);
    let dense = cfg("csg-resnet", Some(8), None, 10);
    let checkered = ModelConfig { checkered: true, ..dense.clone() };
    let (a, b) = (Model::build(&dense, Device::Cpu).unwrap(), Model::build(&checkered, Device::Cpu).unwrap());
    let shapes = |m: &Model| m.named_variables().into_iter().map(|(n, t)| (n, t.size())).collect::<Vec<_>>();
    assert_eq!(shapes(&a), shapes(&b));
    let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
    let (y, trace) = tch::no_grad(|| b.forward_traced(&x, false));
    assert_eq!(y.size(), [1, 10]);
    let layer = |n: &str| trace.iter().find(|t| t.name == n).unwrap();
    assert_eq!(
        (layer("stage_2.0.code").kind, layer("stage_2.0.code").shape.clone()),
        ("CheckeredConv2d", vec![1, 32, 2, 16, 16])
    );
    assert_eq!(layer("stage_3.0.downsample").shape, vec![1, 32, 4, 8, 8]);
    let d = tch::no_grad(|| ModelConfig { checkered: true, ..cfg("csg-densenet", Some(10), Some(12), 10) });
    let y = tch::no_grad(|| Model::build(&d, Device::Cpu).unwrap().forward_t(&x, false));
    assert_eq!(y.size(), [1, 10]);
}

#[test]
fn other_input_sizes_pool_globally() {
    // 28×28 MNIST: the final map is 7×7 (the original's AvgPool2d(8) would fail).
    let c = ModelConfig { depth: Some(8), ..ModelConfig::new("csg-resnet", 10, 1, 28) };
    let x = Tensor::randn([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    let (y, trace) = tch::no_grad(|| Model::build(&c, Device::Cpu).unwrap().forward_traced(&x, false));
    assert_eq!(y.size(), [2, 10]);
    assert_eq!(trace.iter().find(|t| t.name == "avgpool").unwrap().shape, [2, 64, 1, 1]);
}

#[test]
fn bad_options_are_input_errors() {
    let base = || cfg("csg-resnet", Some(20), None, 10);
    let cases: Vec<(ModelConfig, &[&str])> = vec![
        (base().with_option("slice", vec![12, 12, 3]), &["--slice", "4 numbers"]),
        (base().with_option("slice", vec![12, 16, 3, 3]), &["--slice", "S0 = S1"]),
        (base().with_option("slice", vec![16, 16, 1, 1]), &["--slice", "S,S,3,3"]),
        (base().with_option("code_size", 0), &["--code-size", "got 0"]),
        (base().with_option("code_size", -3), &["--code-size"]),
        (base().with_option("freeze_csg", true), &["--freeze-csg", "--csg-from", "binary"]),
        (base().with_option("csg_init", "binary").with_option("csg_from", "x"), &["--csg-init binary", "--csg-from"]),
        (base().with_option("csg_init", "gaussian"), &["--csg-init", "'gaussian'"]),
        (
            cfg("csg-resnet-org", Some(20), None, 10).with_option("slice", vec![16, 16, 3, 3]),
            &["--slice", "baseline", "'csg-resnet'"],
        ),
        (cfg("csg-resnet", Some(21), None, 10), &["--depth", "6n+2"]),
        (cfg("csg-resnet", Some(20), Some(2), 10), &["--width"]),
        (cfg("csg-densenet", Some(41), None, 10), &["--depth", "6n+4"]),
        (
            ModelConfig { depth: Some(50), ..ModelConfig::new("csg-resnet50", 10, 3, 64) },
            &["--depth", "names its depth"],
        ),
    ];
    for (c, needles) in cases {
        let e = Model::build(&c, Device::Cpu).unwrap_err();
        assert!(matches!(e, crate::Error::Input(_)), "{e}");
        let e = e.to_string();
        assert!(needles.iter().all(|n| e.contains(n)), "{needles:?}: {e}");
    }
    // Binary alone is frozen by construction; --freeze-csg with it is accepted.
    assert!(
        Model::build(&base().with_option("csg_init", "binary").with_option("freeze_csg", true), Device::Cpu).is_ok()
    );
}

/// configs/csg_*.json carry the recipes of associative.md §4 and agree with the architectures'
/// `defaults` (so `--config` and `--arch` alone give the same run).
#[test]
fn recipe_configs_follow_associative_md_4() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if !file.starts_with("csg_") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let arch = find(v["arch"].as_str().unwrap()).unwrap();
        let dataset = v["dataset"].as_str().unwrap();
        let defaults = (arch.defaults)(dataset);
        for (key, want) in defaults.as_object().unwrap() {
            assert_eq!(&v[key], want, "{file}: {key}");
        }
        let c = ModelConfig {
            depth: v["depth"].as_i64(),
            width: v["width"].as_i64(),
            options: v
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| OPTION_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..ModelConfig::new(
                arch.name,
                if dataset == "imagefolder" { 1000 } else { 10 },
                3,
                if dataset == "imagefolder" { 224 } else { 32 },
            )
        };
        seen.push((file, count(&c)));
    }
    seen.sort();
    let want = [
        ("csg_densenet-bc40-36-org_cifar10.json", 1_542_682),
        ("csg_densenet-bc40-36_cifar10.json", 842_842),
        ("csg_densenet-bc40-48-org_cifar10.json", 2_733_130),
        ("csg_densenet-bc40-48_cifar10.json", 1_416_394),
        ("csg_resnet110-org_cifar10.json", 1_727_962),
        ("csg_resnet110_cifar10.json", 227_986),
        ("csg_resnet18_imagenet.json", 10_371_368),
        ("csg_resnet20-org_cifar10.json", 269_722),
        ("csg_resnet20_cifar10.json", 115_426),
        ("csg_resnet50_imagenet.json", 15_163_432),
        ("csg_resnet56-org_cifar10.json", 853_018),
        ("csg_resnet56_cifar10.json", 160_450),
    ];
    let got: Vec<(&str, i64)> = seen.iter().map(|(f, c)| (f.as_str(), *c)).collect();
    assert_eq!(got, want);
    // The schedules: 100 epochs at 0.05 then 50 at 0.005 and 50 at 0.0005 (CIFAR); 30/30/30/10 (ImageNet).
    let r = cifar_resnet_recipe("cifar10");
    assert_eq!(
        (r["milestones"].clone(), r["batch_size"].clone(), r["std"][2].clone()),
        (serde_json::json!([100, 150]), 192.into(), 0.2010.into())
    );
    assert_eq!(densenet_recipe("mnist")["batch_size"], 128);
    assert!(densenet_recipe("mnist").get("mean").is_none(), "MNIST keeps its own normalisation");
    // Not the paper's: the grey digit datasets anneal to 0 whatever --epochs says, and never flip.
    for dataset in ["mnist", "fashion-mnist", "kmnist"] {
        let r = cifar_resnet_recipe(dataset);
        assert_eq!(
            (r["schedule"].as_str(), r["lr_min"].as_f64(), r["lr"].as_f64()),
            (Some("cosine"), Some(0.0), Some(0.05))
        );
        assert_eq!(r["augment"], serde_json::json!(["crop:2"]), "{dataset}");
    }
    assert_eq!(cifar_resnet_recipe("cifar100")["schedule"], "multistep");
    assert_eq!(imagenet_recipe("imagefolder")["milestones"], serde_json::json!([30, 60, 90]));
}
