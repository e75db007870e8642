//! Every recipe in configs/ resolves (no unknown key, right types) and builds its model.
mod common;
use common::*;

#[test]
fn every_recipe_resolves_and_its_model_builds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    // ImageNet recipes (`imagefolder`) read their classes from the folder: a stand-in with class
    // directories only.
    let folder = tempfile::tempdir().unwrap();
    for c in ["n01", "n02", "n03"] {
        std::fs::create_dir_all(folder.path().join("train").join(c)).unwrap();
    }
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let mut args = vec!["summary", "--config", p.to_str().unwrap()];
        let text = std::fs::read_to_string(&p).unwrap();
        if text.contains("\"imagefolder\"") {
            args.extend(["--data-dir", folder.path().to_str().unwrap()]);
        }
        let o = run(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), &args);
        assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
        assert!(stdout(&o).contains("trainable parameters:"), "{}", p.display());
        n += 1;
    }
    assert!(n >= 10, "only {n} recipes");
}

#[test]
fn completions_are_generated_for_each_shell() {
    let d = tempfile::tempdir().unwrap();
    for (shell, needle) in [("bash", "_convtrain()"), ("zsh", "#compdef convtrain"), ("fish", "complete -c convtrain")]
    {
        let o = common::run(d.path(), &["completions", shell]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let out = common::stdout(&o);
        assert!(out.contains(needle) && out.contains("bank-size"), "{shell}: {}", &out[..out.len().min(300)]);
    }
    common::assert_input_error(&common::run(d.path(), &["completions", "tcsh"]), &["tcsh"]);
}

/// `train --help` groups its ~70 flags by topic, in the order one reads a recipe.
#[test]
fn train_help_groups_the_flags_by_topic() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["train", "--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    let headings = [
        "Run directory:",
        "Recipe file, logging and checkpoints:",
        "Model:",
        "Family options (each for its family's architectures):",
        "Data:",
        "Training recipe (augmentation, epochs and batches, SGD, schedule):",
        "Seed and device:",
    ];
    let at: Vec<usize> = headings.iter().map(|h| help.find(&format!("\n{h}\n")).unwrap_or(usize::MAX)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]) && at[6] < usize::MAX, "{help}");
    // A flag sits under its topic: between its heading and the next line that starts a heading.
    let section = |h: &str| {
        let rest = &help[help.find(&format!("\n{h}\n")).unwrap() + h.len() + 2..];
        let end = rest.lines().position(|l| l.ends_with(':') && !l.starts_with(' ')).unwrap_or(usize::MAX);
        rest.lines().take(end).collect::<Vec<_>>().join("\n")
    };
    assert!(section("Data:").contains("--data-dir") && !section("Data:").contains("--lr"), "{help}");
    assert!(section("Run directory:").contains("--resume"), "{help}");
}
