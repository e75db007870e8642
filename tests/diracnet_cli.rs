//! DiracNet through the CLI: parameter counts (summary and checkpoints, CIFAR and ImageNet), the
//! recipe's parameter groups and schedule, fold → evaluate, the authors' names through export and
//! `--init-from`, exact resume across an lr drop with the momentum reset, `visualize dirac`, and bad
//! input.
mod common;
use common::*;
use std::path::Path;

/// `train.py`'s CIFAR recipe (the arch's defaults) on tiny data: only size, epochs and threads change.
fn tiny_train<'a>(model: &[&'a str], job: &'a str, epochs: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "--arch", "diracnet"];
    a.extend(model);
    a.extend(["--dataset", "cifar10", "--data-dir", "cifar", "--epochs", epochs, "--job-id", job]);
    a.extend(["--batch-size", "10", "--eval-batch-size", "20", "--threads", "2", "--device", "cpu"]);
    a.extend(extra);
    a
}

/// An ImageNet-style folder with `classes` classes and `per_class` small images each in train/ and
/// val/ (none: class directories only, enough for `summary`).
fn write_image_folder(root: &Path, classes: usize, per_class: usize) {
    for split in ["train", "val"] {
        for c in 0..classes {
            let d = root.join(split).join(format!("n{c:04}"));
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..per_class {
                let shade = (40 * c + 13 * i) as u8;
                image::RgbImage::from_pixel(48, 40, image::Rgb([shade, 255 - shade, 90]))
                    .save(d.join(format!("{i}.png")))
                    .unwrap();
            }
        }
    }
}

fn trainable_count(out: &str) -> String {
    out.lines().find_map(|l| l.strip_prefix("trainable parameters: ")).unwrap_or_else(|| panic!("{out}")).to_string()
}

/// Trainable parameters counted from a checkpoint's tensors (all but BN running statistics), and the
/// count its metadata states.
fn checkpoint_count(path: &Path) -> (usize, String) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let counted = st
        .tensors()
        .iter()
        .filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var") && !n.starts_with("optimizer."))
        .map(|(_, t)| t.shape().iter().product::<usize>())
        .sum();
    let meta = safetensors::SafeTensors::read_metadata(&bytes).unwrap().1;
    (counted, meta.metadata().as_ref().unwrap()["num_parameters"].clone())
}

fn tensor_names(p: &Path) -> Vec<String> {
    let bytes = std::fs::read(p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<String> = st.names().into_iter().cloned().collect();
    v.sort();
    v
}

/// Rewrites a safetensors file keeping the tensors `keep` accepts, renamed by `rename`.
fn rewrite(src: &Path, dst: &Path, keep: impl Fn(&str) -> bool, rename: impl Fn(&str) -> String) {
    let bytes = std::fs::read(src).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().filter(|(n, _)| keep(n)).map(|(n, t)| (rename(&n), t)).collect();
    safetensors::serialize_to_file(views, &None, dst).unwrap();
}

fn eval_json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap()
}

#[test]
fn summary_counts_on_cifar_and_imagenet() {
    let d = tempfile::tempdir().unwrap();
    write_image_folder(&d.path().join("imagenet"), 1000, 0);
    let cases: &[(&[&str], &str)] = &[
        // The README's CIFAR command, nothing else given: the CIFAR recipe on CIFAR-10.
        (&["--arch", "diracnet", "--depth", "34", "--width", "2"], "1,854,378"),
        (&["--arch", "diracnet"], "173,402"),
        (&["--arch", "diracnet", "--depth", "28", "--width", "5", "--dataset", "cifar100"], "9,153,140"),
        (&["--arch", "diracnet", "--depth", "34", "--width", "1", "--dataset", "cifar100"], "472,244"),
        (&["--arch", "diracnet", "--depth", "18", "--dataset", "imagefolder", "--data-dir", "imagenet"], "11,523,368"),
        (&["--arch", "diracnet", "--depth", "34", "--dataset", "imagefolder", "--data-dir", "imagenet"], "21,638,952"),
        (
            &["--arch", "diracnet-folded", "--depth", "18", "--dataset", "imagefolder", "--data-dir", "imagenet"],
            "11,511,784",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["summary"];
        a.extend(*args);
        let o = run(d.path(), &a);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert_eq!(trainable_count(&out), *want, "{args:?}:\n{out}");
        if args[1] == "diracnet-folded" {
            // The plain chain: conv+bias, max-pools, 16 folded 3×3 convs, no BatchNorm.
            for row in ["features.conv ", "max_pool0", "features.group3.block3.conv", "fc "] {
                assert!(out.contains(row), "{row}:\n{out}");
            }
            assert!(!out.contains("BatchNorm"), "{out}");
        }
    }
    // Weight decay on the tensors with more than one dimension only: DiracNet-34-2 has 1,845,344
    // parameters in its 32 conv and fc weights and 9,034 in α, β, BN and the fc bias.
    let o = run(d.path(), &["summary", "--arch", "diracnet", "--depth", "34", "--width", "2"]);
    let out = stdout(&o);
    assert!(out.contains("decay    (wd 0.0005): 1,845,344") && out.contains("no_decay (wd 0): 9,034"), "{out}");
}

#[test]
fn train_count_fold_export_init_from_and_visualize() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(&d.path().join("cifar"), 4, 20);
    let o = run(d.path(), &tiny_train(&["--depth", "34", "--width", "2"], "r", "1", &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("(1854378 parameters)"), "{out}");
    assert!(out.contains("decay    weight decay 0.0005   32 tensors, 1845344 parameters"), "{out}");
    assert!(out.contains("no_decay weight decay 0        123 tensors, 9034 parameters"), "{out}");
    assert_eq!(checkpoint_count(&d.path().join("runs/r/best.safetensors")), (1_854_378, "1854378".into()));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("runs/r/config.json")).unwrap()).unwrap();
    for (key, want) in [
        ("nesterov", serde_json::json!(false)),
        ("reset_momentum", serde_json::json!(true)),
        ("milestones", serde_json::json!([59, 119, 159])),
        ("augment", serde_json::json!(["flip", "crop:4:reflect"])),
        ("val_split", serde_json::json!(0.0)),
        ("dirac_net", serde_json::json!("cifar")),
    ] {
        assert_eq!(cfg["config"][key], want, "{key}");
    }

    let reference = eval_json(&run(d.path(), &["evaluate", "--resume", "runs/r", "--threads", "2"]));

    // Fold (--fold is --materialize) → a diracnet-folded checkpoint that evaluates to the same scores.
    let o = run(d.path(), &["export", "--fold", "runs/r", "folded.safetensors"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("diracnet-folded"), "{}", stdout(&o));
    let names = tensor_names(&d.path().join("folded.safetensors"));
    assert_eq!(names.len(), 2 * 31 + 2, "{names:?}");
    assert!(names.contains(&"features.group2.block9.conv.bias".to_string()));
    let folded = eval_json(&run(d.path(), &["evaluate", "--resume", "folded.safetensors", "--threads", "2"]));
    assert_eq!(folded["arch"], "diracnet-folded");
    assert_eq!(folded["top1"], reference["top1"]);
    let (a, b) = (folded["loss"].as_f64().unwrap(), reference["loss"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-4 * b.abs(), "folded loss {a} vs {b}");
    let o = run(d.path(), &["summary", "--arch", "diracnet-folded", "--depth", "34", "--width", "2"]);
    assert_eq!(trainable_count(&stdout(&o)), "1,847,626", "{}", stdout(&o));

    // The authors' functional names, with the eye* deltas; evaluated again through --init-from, with and
    // without the deltas.
    let o = run(d.path(), &["export", "--format", "pytorch", "runs/r", "authors.safetensors"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = tensor_names(&d.path().join("authors.safetensors"));
    for key in [
        "conv",
        "bn.running_var",
        "group0.block0.conv",
        "group2.block9.alpha",
        "group1.block0.beta",
        "eye64_32_3_3",
        "fc.weight",
    ] {
        assert!(names.contains(&key.to_string()), "{key} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("num_batches_tracked") || n.ends_with(".conv.weight")), "{names:?}");
    rewrite(
        &d.path().join("authors.safetensors"),
        &d.path().join("no_eye.safetensors"),
        |n| !n.starts_with("eye"),
        str::to_string,
    );
    let init = [
        "--arch",
        "diracnet",
        "--depth",
        "34",
        "--width",
        "2",
        "--dataset",
        "cifar10",
        "--data-dir",
        "cifar",
        "--threads",
        "2",
    ];
    for file in ["authors.safetensors", "no_eye.safetensors"] {
        let mut a = vec!["evaluate", "--init-from", file];
        a.extend(init);
        let r = eval_json(&run(d.path(), &a));
        assert_eq!((&r["loss"], &r["top1"]), (&reference["loss"], &reference["top1"]), "{file}");
    }

    // Each form refuses the other's weights; a renamed or reshaped tensor is named.
    let mut a = vec!["evaluate", "--init-from", "folded.safetensors"];
    a.extend(init);
    assert_input_error(&run(d.path(), &a), &["folded", "--arch diracnet-folded"]);
    let mut a = vec!["evaluate", "--init-from", "authors.safetensors", "--arch", "diracnet-folded"];
    a.extend(&init[2..]);
    assert_input_error(&run(d.path(), &a), &["unfolded", "--arch diracnet", "--materialize"]);
    let mut t = tiny_train(&["--depth", "34", "--width", "2"], "f", "1", &["--init-from", "folded.safetensors"]);
    t.push("--overwrite");
    assert_input_error(&run(d.path(), &t), &["features.", "--arch diracnet-folded"]);
    rewrite(
        &d.path().join("authors.safetensors"),
        &d.path().join("renamed.safetensors"),
        |_| true,
        |n| n.replace("group1.block3.alpha", "group1.block3.gamma"),
    );
    let mut a = vec!["evaluate", "--init-from", "renamed.safetensors"];
    a.extend(init);
    assert_input_error(&run(d.path(), &a), &["renamed.safetensors", "group1.block3.alpha", "missing"]);
    let mut a = vec!["evaluate", "--init-from", "authors.safetensors"];
    a.extend(["--arch", "diracnet", "--depth", "34", "--width", "1", "--dataset", "cifar10", "--data-dir", "cifar"]);
    assert_input_error(&run(d.path(), &a), &["authors.safetensors", "shape"]);

    // α and β per layer, as a PNG and a table of the 30 Dirac convolutions.
    let o = run(d.path(), &["visualize", "dirac", "runs/r", "--out", "dirac.png"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::metadata(d.path().join("dirac.png")).unwrap().len() > 5000);
    let out = stdout(&o);
    assert!(out.contains("group0.block0") && out.contains(" 30 group2.block9"), "{out}");
    let o = run(d.path(), &["visualize", "dirac", "folded.safetensors"]);
    assert_input_error(&o, &["folded.safetensors", "alpha"]);
}

#[test]
fn imagenet_checkpoint_count_and_recipe() {
    let d = tempfile::tempdir().unwrap();
    write_image_folder(&d.path().join("imagenet"), 4, 2);
    let o = run(
        d.path(),
        &[
            "train",
            "--arch",
            "diracnet",
            "--depth",
            "18",
            "--dataset",
            "imagefolder",
            "--data-dir",
            "imagenet",
            "--resize",
            "64",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--job-id",
            "i",
            "--threads",
            "2",
            "--device",
            "cpu",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // 4 classes instead of 1000: 996 × (512 + 1) parameters fewer than DiracNet-18's 11,523,368.
    let want = 11_523_368 - 996 * 513;
    assert_eq!(checkpoint_count(&d.path().join("runs/i/last.safetensors")), (want, want.to_string()));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("runs/i/config.json")).unwrap()).unwrap();
    for (key, want) in [
        ("dirac_net", serde_json::json!("imagenet")),
        ("weight_decay", serde_json::json!(0.0001)),
        ("milestones", serde_json::json!([29, 59, 89])),
        ("gammas", serde_json::json!([0.1])),
        ("augment", serde_json::json!(["rrc", "flip"])),
    ] {
        assert_eq!(cfg["config"][key], want, "{key}");
    }
}

#[test]
fn resume_across_the_lr_drop_equals_the_straight_run() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(&d.path().join("cifar"), 6, 10);
    // The lr drops ×0.2 before the 3rd epoch (milestone 2, 0-based) and the momentum is reset there.
    let model = ["--depth", "10", "--width", "1"];
    let sched = ["--milestones", "2", "--gammas", "0.2", "--seed", "3"];
    let straight = run(d.path(), &tiny_train(&model, "straight", "4", &sched));
    assert!(straight.status.success(), "{}", stderr(&straight));
    let first = run(d.path(), &tiny_train(&model, "split", "2", &sched));
    assert!(first.status.success(), "{}", stderr(&first));
    let mut resume = tiny_train(&model, "split", "4", &sched);
    resume.extend(["--resume", "runs/split"]);
    let second = run(d.path(), &resume);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stdout(&second).contains("resuming at epoch 3"), "{}", stdout(&second));
    let (a, b) = (d.path().join("runs/straight"), d.path().join("runs/split"));
    assert_eq!(weights(&a.join("last.safetensors")), weights(&b.join("last.safetensors")));
    let rows = |p: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(p.join("log.csv")).unwrap();
        text.lines().map(|l| l.split(',').take(8).collect::<Vec<_>>().join(",")).collect()
    };
    assert_eq!(rows(&a), rows(&b));
    let lrs: Vec<String> = rows(&a)[1..].iter().map(|r| r.split(',').nth(1).unwrap().to_string()).collect();
    let lrs: Vec<f64> = lrs.iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(lrs.len(), 4);
    assert!(
        lrs[0] == 0.1 && lrs[1] == 0.1 && (lrs[2] - 0.02).abs() < 1e-12 && (lrs[3] - 0.02).abs() < 1e-12,
        "{lrs:?}"
    );
    // Without the reset the run differs: the reset happened.
    let mut no_reset = tiny_train(&model, "no_reset", "4", &sched);
    no_reset.extend(["--reset-momentum", "false"]);
    let o = run(d.path(), &no_reset);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(weights(&a.join("last.safetensors")), weights(&d.path().join("runs/no_reset/last.safetensors")));
}

#[test]
fn weight_decay_leaves_alpha_beta_and_batch_norm_untouched() {
    use convtrain::config::TrainConfig;
    use tch::{Device, Kind, Tensor};
    let cfg = TrainConfig::resolve(
        serde_json::json!({"arch": "diracnet", "depth": 10, "dataset": "cifar10"}),
        serde_json::json!({}),
        "test",
    )
    .unwrap();
    assert!(cfg.no_decay_1d && cfg.no_decay.is_none());
    tch::manual_seed(0);
    let (model, mut sgd) = convtrain::train::trainer::build_model_and_optimizer(&cfg, Device::Cpu).unwrap();
    let decayed: Vec<&str> = sgd.groups[0].params.iter().map(|(n, _)| n.as_str()).collect();
    let mut want = vec!["conv", "fc.weight"];
    let blocks = [
        "group0.block0.conv",
        "group0.block1.conv",
        "group1.block0.conv",
        "group1.block1.conv",
        "group2.block0.conv",
        "group2.block1.conv",
    ];
    want.extend(blocks);
    want.sort();
    let mut got = decayed.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(sgd.groups[1].weight_decay, 0.0);
    assert!(sgd.groups[1].params.iter().all(|(_, t)| t.dim() == 1));
    // A step with zero gradients: weight decay alone moves the decayed tensors and nothing else.
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    (model.forward_t(&x, true).sum(Kind::Float) * 0.0).backward();
    let before: Vec<(String, Tensor)> = model.named_variables().into_iter().map(|(n, t)| (n, t.copy())).collect();
    sgd.step(0.1);
    for ((name, old), (_, new)) in before.iter().zip(model.named_variables()) {
        let moved = !old.equal(&new);
        assert_eq!(moved, want.contains(&name.as_str()), "{name}");
        if moved {
            let expected = old * (1.0 - 0.1 * 5e-4);
            assert!(new.allclose(&expected, 1e-6, 1e-9, false), "{name}");
        }
    }
    // The schedule: 0.1 for 1-based epochs 1-59, 0.02 for 60-119, 0.004 for 120-159, 0.0008 after,
    // the momentum reset before epochs 60, 120 and 160.
    let schedule = cfg.schedule().unwrap();
    let pos = |epoch| convtrain::train::schedule::Position {
        epoch,
        batch: 1,
        batches_per_epoch: 391,
        full_batches_per_epoch: 390,
        total_epochs: 200,
    };
    for (one_based, want) in
        [(1, 0.1), (59, 0.1), (60, 0.02), (119, 0.02), (120, 0.004), (159, 0.004), (160, 0.0008), (200, 0.0008)]
    {
        let lr = schedule.lr(cfg.lr, pos(one_based - 1));
        assert!((lr - want).abs() < 1e-12, "epoch {one_based}: {lr}");
    }
    let resets: Vec<usize> = (0..200).filter(|&e| schedule.is_milestone(e)).map(|e| e + 1).collect();
    assert_eq!(resets, [60, 120, 160]);
}

#[test]
fn bad_depths_and_options_are_input_errors() {
    let d = tempfile::tempdir().unwrap();
    write_image_folder(&d.path().join("imagenet"), 3, 0);
    let cases: &[(&[&str], &[&str])] = &[
        (&["--depth", "18"], &["--depth 18", "6n+4", "imagefolder"]),
        (&["--depth", "12"], &["--depth 12", "6n+4"]),
        (&["--depth", "20", "--dataset", "imagefolder", "--data-dir", "imagenet"], &["--depth 20", "18 or 34"]),
        (&["--depth", "16", "--dirac-net", "imagenet"], &["--depth 16", "18 or 34"]),
        (&["--width", "0"], &["--width"]),
        (&["--checkered"], &["--checkered", "DiracNet"]),
    ];
    for (args, needles) in cases {
        let mut a = vec!["summary", "--arch", "diracnet"];
        a.extend(*args);
        assert_input_error(&run(d.path(), &a), needles);
    }
    let o = run(d.path(), &["summary", "--arch", "diracnet", "--dirac-init", "uniform"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("kaiming") && stderr(&o).contains("normal"), "{}", stderr(&o));
}
