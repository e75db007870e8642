//! The VGG feature-amount sweep through the CLI: the variant listing, the recipe a run gets, the PyTorch
//! export in the authors' names, `--init-from` of it (DataParallel prefix included), and bad input.
mod common;
use common::*;

/// vgg_features.md Appendix A as the test fixture holds it.
const APPENDIX_A: &str = include_str!("fixtures/vgg_features_appendix_a.csv");

#[test]
fn sweep_lists_the_variants_as_table_csv_and_json() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["sweep", "vgg-features", "--list", "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().next(), Some("id,xi,omega,alpha,parameters,trainable,widths"));
    // Every column but the trainable count is Appendix A's; the count adds BN γ/β and the output bias.
    for (listed, golden) in out.lines().skip(1).zip(APPENDIX_A.lines().skip(1)) {
        let l: Vec<&str> = listed.split(',').collect();
        let g: Vec<&str> = golden.split(',').collect();
        assert_eq!([l[0], l[1], l[2], l[3], l[4], l[6]], g[..], "{listed}");
        let widths: i64 = l[6].split(' ').map(|w| w.parse::<i64>().unwrap()).sum();
        assert_eq!(l[5].parse::<i64>().unwrap(), l[4].parse::<i64>().unwrap() + 2 * widths + 10);
    }
    assert_eq!(out.lines().count(), 194);

    let o = run(d.path(), &["sweep", "vgg-features", "--list", "--vgg-depth", "13", "--dataset", "cifar100"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("--vgg-depth 13, cifar100 (100 classes, 3x32x32 input): 194 variants"), "{out}");

    let o = run(d.path(), &["sweep", "vgg-features", "--list", "--format", "json", "--dataset", "fashion-mnist"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list.len(), 193);
    assert_eq!(list[192]["widths"][0], 24);
    assert_eq!((list[0]["parameters"].clone(), list[0]["trainable"].clone()), (27_206_551.into(), 27_216_561.into()));

    assert_input_error(&run(d.path(), &["sweep", "vgg-features"]), &["training a sweep: not in this build"]);
    assert_input_error(
        &run(d.path(), &["sweep", "vgg-features", "--list", "--vgg-depth", "11"]),
        &["--vgg-depth", "11"],
    );
    assert_input_error(
        &run(d.path(), &["sweep", "vgg-features", "--list", "--dataset", "svhn"]),
        &["--dataset", "svhn"],
    );
}

fn tensor_names(p: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(p).unwrap();
    safetensors::SafeTensors::deserialize(&bytes).unwrap().names().into_iter().cloned().collect()
}

const TINY: [&str; 4] = ["--arch", "vgg-features", "--widths", "4,4,5,5,6,6,6,3,3"];

#[test]
fn mnist_run_gets_the_sweep_recipe_and_its_export_loads_back() {
    let d = tempfile::tempdir().unwrap();
    write_mnist(&d.path().join("mnist"), 40, 20);
    let mut train = vec!["train"];
    train.extend(TINY);
    train.extend(["--dataset", "mnist", "--data-dir", "mnist", "--epochs", "1", "--threads", "2", "--device", "cpu"]);
    train.extend(["--job-id", "v"]);
    let o = run(d.path(), &train);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("runs/v/config.json")).unwrap()).unwrap();
    let c = &cfg["config"];
    for (key, want) in [
        ("resize", serde_json::json!(32)),
        ("gray_to_rgb", true.into()),
        ("normalize_data", false.into()),
        ("mean", serde_json::json!([0.1307])),
        ("augment", serde_json::json!([])),
        ("val_split", 0.0.into()),
        ("lr", 0.01.into()),
        ("nesterov", false.into()),
        ("weight_decay", 5e-4.into()),
        ("no_decay", serde_json::json!([])),
        ("schedule", "sgdr".into()),
        ("sgdr_t0", 10.into()),
        ("lr_min", 1e-5.into()),
        ("batch_size", 128.into()),
        ("epochs", 1.into()),
    ] {
        assert_eq!(c[key], want, "{key} in {c}");
    }
    assert_eq!(
        (&cfg["dataset"]["mean"], &cfg["dataset"]["std"]),
        (&serde_json::json!([0.0]), &serde_json::json!([1.0]))
    );

    let p = run(d.path(), &["export", "--format", "pytorch", "runs/v", "pt.safetensors"]);
    assert!(p.status.success(), "{}", stderr(&p));
    let names = tensor_names(&d.path().join("pt.safetensors"));
    for want in [
        "features.block1.block.conv_layer1.convlayer.conv1.weight",
        "features.block5.block.conv_layer1.convlayer.bn1.num_batches_tracked",
        "classifier.0.fc_block.fc_layer1.fclayer.bn2.running_var",
        "classifier.0.fc_block.final_layer.bias",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    // The same weights as a DataParallel state_dict (`module.` prefix) score like the run's best checkpoint.
    let bytes = std::fs::read(d.path().join("pt.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let prefixed: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().map(|(n, t)| (format!("module.{n}"), t)).collect();
    safetensors::serialize_to_file(prefixed, &None, &d.path().join("dp.safetensors")).unwrap();
    let evaluate = |extra: &[&str]| {
        let mut a = vec!["evaluate", "--data-dir", "mnist", "--threads", "2"];
        a.extend(extra);
        let o = run(d.path(), &a);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let best = evaluate(&["--resume", "runs/v"]);
    let mut from_pytorch = vec!["--init-from", "dp.safetensors", "--dataset", "mnist"];
    from_pytorch.extend(TINY);
    let loaded = evaluate(&from_pytorch);
    assert_eq!((&best["top1"], &best["loss"]), (&loaded["top1"], &loaded["loss"]));
}

#[test]
fn bad_model_options_are_input_errors() {
    let d = tempfile::tempdir().unwrap();
    for (flags, needles) in [
        (&["--vgg-depth", "11"][..], &["--vgg-depth", "10, 13, 16, 19"][..]),
        (&["--variant", "0"], &["--variant", "numbered from 1"]),
        (&["--variant", "194"], &["--variant", "1 to 193"]),
        (&["--widths", "1,2,3"], &["--widths", "got 3"]),
        (&["--widths", "4,4,5,5,6,6,6,3,0"], &["--widths", "at least 1"]),
        (&["--widths", "4,4,5,5,6,6,6,3,3", "--vgg-depth", "13"], &["--widths", "takes 12"]),
        (&["--weight-init", "orthogonal"], &["--weight-init", "kaiming-normal"]),
        (&["--bn-eps=-1"], &["--bn-eps", "≥ 0"]),
        (&["--depth", "16"], &["--vgg-depth"]),
    ] {
        let mut a = vec!["summary", "--arch", "vgg-features"];
        a.extend(flags);
        assert_input_error(&run(d.path(), &a), needles);
    }
    // The model is refused before any data is read.
    let small = ["train", "--arch", "vgg-features", "--dataset", "mnist", "--data-dir", "none", "--resize", "16"];
    assert_input_error(&run(d.path(), &small), &["32×32", "--resize 32"]);
}

#[test]
fn recipes_are_the_architecture_defaults_and_give_the_section_3_3_schedule() {
    use convtrain::config::TrainConfig;
    use convtrain::train::schedule::Position;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dataset in ["cifar10", "mnist", "fashion-mnist"] {
        let path = root.join(format!("configs/vgg-features_{dataset}.json"));
        let from_file =
            TrainConfig::resolve(TrainConfig::read_file(&path).unwrap(), serde_json::json!({}), "f").unwrap();
        let flags = serde_json::json!({"arch": "vgg-features", "dataset": dataset, "vgg_depth": 16});
        let from_arch = TrainConfig::resolve(serde_json::Value::Null, flags, "flags").unwrap();
        assert_eq!(from_file, from_arch, "{dataset}");
        // vgg_features.md §3.3's lr table to its 4-6 digits (CIFAR-10: 391 batches, denominator 390).
        let schedule = from_arch.schedule().unwrap();
        for (epoch, batch, want) in
            [(0, 1, 0.01), (5, 1, 0.00500098), (9, 390, 1e-5), (10, 2, 0.01), (29, 1, 7.118e-5), (149, 391, 1e-5)]
        {
            let pos = Position { epoch, batch, batches_per_epoch: 391, full_batches_per_epoch: 390, total_epochs: 150 };
            let lr = schedule.lr(from_arch.lr, pos);
            assert!((lr - want).abs() < 1e-4 * want, "{dataset} epoch {epoch} batch {batch}: {lr}");
        }
    }
}
