//! The associative (CSG) family through the CLI: parameter counts from `summary` and from saved
//! checkpoints, the recipe an `--arch` alone gives, `--csg-from` across depths with a frozen generator
//! that stays bit-identical through training and resume, the binary generator, PyTorch export,
//! `--materialize` + `evaluate`, and the bad-input messages (exit 2, nothing written).
mod common;
use common::*;
use std::path::Path;

/// Tiny CIFAR-10 files (40 training, 20 test images) in `<dir>/cifar`.
fn data(dir: &Path) {
    write_cifar10(&dir.join("cifar"), 8, 20);
}

/// `train` of `model` for `epochs` epochs on the tiny CIFAR files into `runs/<job>`.
fn train<'a>(job: &'a str, epochs: &'a str, model: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "--dataset", "cifar10", "--data-dir", "cifar", "--epochs", epochs, "--job-id", job];
    a.extend(["--batch-size", "20", "--device", "cpu", "--threads", "2"]);
    a.extend(model);
    a
}

fn metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    safetensors::SafeTensors::read_metadata(&bytes).unwrap().1.metadata().clone().unwrap()
}

/// Elements of a checkpoint's tensors other than BN running statistics.
fn counted(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .iter()
        .filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var") && !n.starts_with("optimizer."))
        .map(|(_, t)| t.shape().iter().product::<usize>())
        .sum()
}

fn tensor<'a>(w: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &w.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} missing")).1
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap()
}

#[test]
fn summary_counts_and_compression_report() {
    let d = tempfile::tempdir().unwrap();
    for (model, want, ratio) in [
        (vec!["--arch", "csg-resnet", "--depth", "56"], "160,450", Some("5.32x")),
        (
            vec!["--arch", "csg-resnet", "--depth", "56", "--slice", "16,16,3,3", "--code-size", "128"],
            "347,162",
            Some("2.46x"),
        ),
        (
            vec!["--arch", "csg-resnet", "--depth", "20", "--slice", "16,16,3,3", "--code-size", "72"],
            "176,698",
            Some("1.53x"),
        ),
        (vec!["--arch", "csg-resnet", "--depth", "110"], "227,986", Some("7.58x")),
        (vec!["--arch", "csg-resnet-org", "--depth", "56"], "853,018", None),
        (vec!["--arch", "csg-densenet", "--width", "36"], "842,842", Some("1.83x")),
        (vec!["--arch", "csg-densenet"], "1,416,394", Some("1.93x")),
        (vec!["--arch", "csg-densenet-org", "--width", "48"], "2,733,130", None),
        // A reused, frozen generator: 160,450 − 93,312 trainable (associative.md §3.1).
        (
            vec!["--arch", "csg-resnet", "--depth", "56", "--csg-from", "elsewhere", "--freeze-csg"],
            "67,138",
            Some("5.32x"),
        ),
    ] {
        let mut a = vec!["summary", "--dataset", "cifar10"];
        a.extend(&model);
        let o = run(d.path(), &a);
        assert!(o.status.success(), "{model:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains(&format!("trainable parameters: {want}")), "{model:?}: {out}");
        match ratio {
            Some(r) => assert!(out.contains(r) && out.contains("generator CSG.weight"), "{model:?}: {out}"),
            None => assert!(!out.contains("generator CSG.weight"), "{out}"),
        }
    }
}

#[test]
fn checkpoint_counts_across_depths_growth_rates_and_slices() {
    let d = tempfile::tempdir().unwrap();
    data(d.path());
    for (job, model, want) in [
        // associative.md §3.1, and counts from scripts/crosscheck_csg.py.
        ("r20", vec!["--arch", "csg-resnet", "--depth", "20"], 115_426),
        (
            "r20-1616-72",
            vec!["--arch", "csg-resnet", "--depth", "20", "--slice", "16,16,3,3", "--code-size", "72"],
            176_698,
        ),
        ("r8", vec!["--arch", "csg-resnet", "--depth", "8"], 100_418),
        ("r8-org", vec!["--arch", "csg-resnet-org", "--depth", "8"], 75_290),
        ("d10-12", vec!["--arch", "csg-densenet", "--depth", "10", "--width", "12"], 99_526),
        ("d10-24", vec!["--arch", "csg-densenet", "--depth", "10", "--width", "24"], 115_126),
        (
            "d10-12-1616",
            vec![
                "--arch",
                "csg-densenet",
                "--depth",
                "10",
                "--width",
                "12",
                "--slice",
                "16,16,3,3",
                "--code-size",
                "128",
            ],
            301_414,
        ),
    ] {
        let o = run(d.path(), &train(job, "1", &model));
        assert!(o.status.success(), "{job}: {}", stderr(&o));
        assert!(stdout(&o).contains(&format!("({want} parameters)")), "{job}: {}", stdout(&o));
        let best = d.path().join(format!("runs/{job}/best.safetensors"));
        assert_eq!(metadata(&best)["num_parameters"], want.to_string(), "{job}");
        // The generator is stored once: counting the file's tensors gives the same number.
        assert_eq!(counted(&best), want as usize, "{job}");
    }
}

#[test]
fn recipe_generator_reuse_across_depths_frozen_through_training_and_resume() {
    let d = tempfile::tempdir().unwrap();
    data(d.path());
    // The architecture alone gives associative.md §4.1's recipe.
    let o = run(d.path(), &train("a", "1", &["--arch", "csg-resnet", "--depth", "8"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let run_cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("runs/a/config.json")).unwrap()).unwrap();
    let c = &run_cfg["config"];
    assert_eq!(
        (c["lr"].as_f64(), c["nesterov"].as_bool(), c["weight_decay"].as_f64()),
        (Some(0.05), Some(false), Some(5e-4))
    );
    assert_eq!(
        (c["milestones"].clone(), c["gammas"].clone()),
        (serde_json::json!([100, 150]), serde_json::json!([0.1, 0.1]))
    );
    assert_eq!(
        (c["epochs"].as_u64(), c["augment"].clone(), c["val_split"].as_f64()),
        (Some(1), serde_json::json!(["crop:4", "flip"]), Some(0.0))
    );
    assert_eq!(c["std"], serde_json::json!([0.2023, 0.1994, 0.2010]));
    let source = weights(&d.path().join("runs/a/best.safetensors"));

    // ResNet-14 reusing ResNet-8's generator, frozen; 1 epoch, then resumed to 2.
    let reuse = ["--arch", "csg-resnet", "--depth", "14", "--csg-from", "runs/a", "--freeze-csg"];
    let o = run(d.path(), &train("b", "1", &reuse));
    assert!(o.status.success(), "{}", stderr(&o));
    // ResNet-14 [12,12,3,3]-72: 107,922 parameters, 93,312 of them the generator (crosscheck_csg.py).
    let (all, generator) = (107_922, 93_312);
    let log = stdout(&o);
    assert!(log.contains(&format!("({} parameters)", all - generator)), "{log}");
    let decay = log.lines().find(|l| l.contains("parameter group decay")).unwrap();
    assert!(decay.ends_with(&format!(" {} parameters", all - generator)), "{decay}");
    let epoch1 = weights(&d.path().join("runs/b/last.safetensors"));
    assert_eq!(tensor(&epoch1, "CSG.weight"), tensor(&source, "CSG.weight"), "the generator was not transferred");
    assert!(!epoch1.iter().any(|(n, _)| n == "optimizer.momentum.CSG.weight"), "a frozen generator has no momentum");
    // The uninterrupted 2-epoch run, then the source removed: a resume restores the generator from
    // its own checkpoint and never reads --csg-from again.
    let o = run(d.path(), &train("c", "2", &reuse));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(d.path().join("runs/a")).unwrap();
    let o = run(d.path(), &["train", "--resume", "runs/b", "--epochs", "2", "--threads", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let epoch2 = weights(&d.path().join("runs/b/last.safetensors"));
    assert_eq!(tensor(&epoch2, "CSG.weight"), tensor(&source, "CSG.weight"), "the frozen generator moved");
    assert_ne!(tensor(&epoch2, "stage_2.1.code2"), tensor(&epoch1, "stage_2.1.code2"), "the codes did not train");
    // Resumed = uninterrupted, bit for bit.
    assert_eq!(weights(&d.path().join("runs/c/last.safetensors")), epoch2);

    // The binary generator: ±0.5, frozen, untouched by training.
    let o = run(d.path(), &train("bin", "1", &["--arch", "csg-resnet", "--depth", "8", "--csg-init", "binary"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("({} parameters)", 100_418 - generator)), "{}", stdout(&o));
    let w = weights(&d.path().join("runs/bin/last.safetensors"));
    let values: Vec<f32> =
        tensor(&w, "CSG.weight").chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    assert!(values.iter().all(|&v| v == 0.5 || v == -0.5));
}

#[test]
fn export_materialize_and_evaluate_score_the_same_logits() {
    let d = tempfile::tempdir().unwrap();
    data(d.path());
    let model = ["--arch", "csg-resnet", "--depth", "8", "--slice", "16,16,3,3", "--code-size", "32"];
    let o = run(d.path(), &train("m", "1", &model));
    assert!(o.status.success(), "{}", stderr(&o));
    let evaluate = |args: &[&str]| {
        let mut a = vec!["evaluate", "--data-dir", "cifar", "--threads", "2"];
        a.extend(args);
        json(&run(d.path(), &a))
    };
    let base = evaluate(&["--resume", "runs/m"]);

    let o = run(d.path(), &["export", "--format", "pytorch", "runs/m", "pt.safetensors"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = weights(&d.path().join("pt.safetensors")).into_iter().map(|(n, _)| n).collect();
    for want in
        ["CSG.weight", "stage_1.0.CSG.weight", "stage_3.0.code2", "bn_1.num_batches_tracked", "classifier.weight"]
    {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    let mut a = vec!["--init-from", "pt.safetensors"];
    a.extend(model);
    let pt = evaluate(&a);
    assert_eq!((&pt["top1"], &pt["loss"]), (&base["top1"], &base["loss"]));

    let o = run(d.path(), &["export", "--materialize", "runs/m", "plain.safetensors"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = weights(&d.path().join("plain.safetensors")).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.iter().any(|n| n == "stage_2.0.conv_a.weight")
            && !names.iter().any(|n| n.contains("CSG") || n.contains("code"))
    );
    let plain = evaluate(&["--resume", "plain.safetensors"]);
    assert_eq!(plain["arch"], "csg-resnet-org");
    assert_eq!(plain["top1"], base["top1"]);
    let (a, b) = (plain["loss"].as_f64().unwrap(), base["loss"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-5 * b.abs(), "{a} vs {b}");

    // A baseline checkpoint given to the CSG model: refused, nothing written.
    let mut init = train("from-plain", "1", &model);
    init.extend(["--init-from", "plain.safetensors"]);
    assert_input_error(&run(d.path(), &init), &["no slice generator", "csg-resnet-org"]);
    assert!(!d.path().join("runs/from-plain").exists());
}

#[test]
fn bad_csg_input_is_a_clear_error_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    data(d.path());
    let o = run(
        d.path(),
        &train("small", "1", &["--arch", "csg-resnet", "--depth", "8", "--slice", "16,16,3,3", "--code-size", "128"]),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(d.path(), &train("org", "1", &["--arch", "csg-resnet-org", "--depth", "8"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(d.path(), &["export", "--format", "pytorch", "runs/small", "small-pt.safetensors"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csg = |extra: &[&'static str]| {
        let mut m = vec!["--arch", "csg-resnet", "--depth", "8"];
        m.extend(extra);
        m
    };
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (csg(&["--slice", "12,12,3"]), vec!["--slice", "4 numbers"]),
        (csg(&["--slice", "12,16,3,3"]), vec!["--slice", "S0 = S1"]),
        (csg(&["--code-size", "0"]), vec!["--code-size", "got 0"]),
        (csg(&["--freeze-csg"]), vec!["--freeze-csg", "--csg-from", "--csg-init binary"]),
        (csg(&["--csg-init", "binary", "--csg-from", "runs/small"]), vec!["--csg-init binary", "--csg-from"]),
        (csg(&["--csg-from", "runs/org"]), vec!["--csg-from", "runs/org", "no slice generator"]),
        (
            csg(&["--csg-from", "runs/small"]),
            vec!["--csg-from", "slice [16,16,3,3] and code size 128", "expects slice [12,12,3,3] and code size 72"],
        ),
        (csg(&["--csg-from", "small-pt.safetensors"]), vec!["small-pt.safetensors", "[2304, 128]", "[1296, 72]"]),
        (csg(&["--csg-from", "nowhere"]), vec!["nowhere", "no such checkpoint"]),
        (
            vec!["--arch", "csg-resnet-org", "--depth", "8", "--code-size", "16"],
            vec!["--code-size", "baseline", "'csg-resnet'"],
        ),
    ];
    for (i, (model, needles)) in cases.into_iter().enumerate() {
        let job = format!("bad{i}");
        let o = run(d.path(), &train(&job, "1", &model));
        assert_input_error(&o, &needles);
        assert!(!d.path().join("runs").join(&job).exists(), "{model:?} wrote its run directory");
    }
}

/// The recipes' multistep milestones are 0-based epochs at whose start the lr drops: CIFAR main.py
/// runs phases of 100, 50 and 50 epochs at 0.05, 0.005, 0.0005; ImageNet's of 30/30/30/10 at 0.1 … 1e-4
/// (associative.md §4, "the jumps exactly at indices 100 and 150").
#[test]
fn the_recipe_schedules_drop_where_the_originals_do() {
    use convtrain::config::TrainConfig;
    use convtrain::train::schedule::Position;
    // (arch, dataset, [(0-based epoch, lr)]).
    type Case = (&'static str, &'static str, &'static [(usize, f64)]);
    let cases: [Case; 3] = [
        ("csg-resnet", "cifar10", &[(0, 0.05), (99, 0.05), (100, 0.005), (149, 0.005), (150, 0.0005), (199, 0.0005)]),
        ("csg-densenet-org", "cifar10", &[(99, 0.05), (100, 0.005), (150, 0.0005)]),
        ("csg-resnet50", "imagefolder", &[(29, 0.1), (30, 0.01), (59, 0.01), (60, 0.001), (90, 0.0001), (99, 0.0001)]),
    ];
    for (arch, dataset, lrs) in cases {
        let cfg =
            TrainConfig::resolve(serde_json::json!({}), serde_json::json!({"arch": arch, "dataset": dataset}), "test")
                .unwrap();
        let schedule = cfg.schedule().unwrap();
        for &(epoch, want) in lrs {
            let pos = Position {
                epoch,
                batch: 1,
                batches_per_epoch: 10,
                full_batches_per_epoch: 10,
                total_epochs: cfg.epochs,
            };
            let lr = schedule.lr(cfg.lr, pos);
            assert!((lr - want).abs() < 1e-12 * want.max(1.0) + 1e-15, "{arch} epoch {epoch}: lr {lr}, want {want}");
        }
    }
}
