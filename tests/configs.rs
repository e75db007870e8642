//! Every recipe in configs/ resolves (no unknown key, right types) and builds its model.
mod common;
use common::*;

#[test]
fn every_recipe_resolves_and_its_model_builds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    // Image-folder recipes (ImageNet) only need the class directories to describe the dataset.
    let folder = tempfile::tempdir().unwrap();
    for class in ["a", "b"] {
        std::fs::create_dir_all(folder.path().join("train").join(class)).unwrap();
    }
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let mut args = vec!["summary", "--config", p.to_str().unwrap()];
        if std::fs::read_to_string(&p).unwrap().contains("\"imagefolder\"") {
            args.extend(["--data-dir", folder.path().to_str().unwrap()]);
        }
        let o = run(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), &args);
        assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
        assert!(stdout(&o).contains("trainable parameters:"), "{}", p.display());
        n += 1;
    }
    assert!(n >= 10, "only {n} recipes");
}
