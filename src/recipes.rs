//! The bundled recipes: every `configs/*.json` of the source tree, embedded in the binary at build time
//! (`build.rs`), so `--config NAME` works from any directory. A recipe is a JSON object of training
//! settings; its optional `"recipe"` object (`paper`, `description`) describes it for `convtrain
//! recipes` and is ignored by the configuration ([`RECIPE_KEY`]).
use crate::error::{did_you_mean, Result};
use crate::{input_err, internal_err};
use serde_json::Value;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/recipes.rs"));

/// The key of a recipe's (or a run configuration's) description, which training ignores.
pub const RECIPE_KEY: &str = "recipe";

/// One bundled recipe, as `convtrain recipes` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecipeInfo {
    pub name: String,
    pub paper: String,
    pub arch: String,
    pub dataset: String,
    pub epochs: Option<u64>,
    pub description: String,
}

/// The settings of the bundled recipe `name`, if there is one.
pub fn bundled(name: &str) -> Option<Result<Value>> {
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(n, text)| {
        serde_json::from_str(text).map_err(|e| internal_err!("the bundled recipe {n} is not valid JSON ({e})"))
    })
}

/// Every bundled recipe, sorted by name.
pub fn list() -> Result<Vec<RecipeInfo>> {
    BUNDLED
        .iter()
        .map(|(name, _)| {
            let v = bundled(name).unwrap_or_else(|| Err(internal_err!("recipe {name} vanished")))?;
            let text = |obj: &Value, k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let about = v.get(RECIPE_KEY).cloned().unwrap_or(Value::Null);
            Ok(RecipeInfo {
                name: name.to_string(),
                paper: text(&about, "paper"),
                arch: text(&v, "arch"),
                dataset: text(&v, "dataset"),
                epochs: v.get("epochs").and_then(Value::as_u64),
                description: text(&about, "description"),
            })
        })
        .collect()
}

/// Where `--config ARG` reads its settings from.
#[derive(Debug, Clone, PartialEq)]
pub enum RecipeSource<'a> {
    /// A bundled recipe by name.
    Bundled(&'static str),
    /// A file.
    File(&'a Path),
}

/// Decides what `--config arg` names: a path (it has a directory part or an extension) is a file; a
/// bare name is the bundled recipe of that name, else a file of that name in the current directory.
/// Anything else is an error that names the nearest recipe.
pub fn locate(arg: &Path) -> Result<RecipeSource<'_>> {
    let text = arg.to_string_lossy();
    let is_path = arg.components().count() > 1 || arg.extension().is_some();
    if !is_path {
        if let Some((name, _)) = BUNDLED.iter().find(|(n, _)| *n == text) {
            return Ok(RecipeSource::Bundled(name));
        }
    }
    if is_path || arg.is_file() {
        return Ok(RecipeSource::File(arg));
    }
    Err(input_err!(
        "--config {text}: no bundled recipe of that name{} and no such file. `convtrain recipes` lists the \
         recipes; a file in the current directory is read when named as a path (./{text}) or with its extension.",
        did_you_mean(&text, BUNDLED.iter().map(|(n, _)| *n))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configs_file_is_bundled_with_a_description() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let files =
            std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some()).count();
        let listed = list().unwrap();
        assert_eq!(listed.len(), files);
        for r in &listed {
            assert!(!r.paper.is_empty() && !r.description.is_empty() && !r.arch.is_empty(), "{r:?}");
        }
    }

    #[test]
    fn names_paths_and_near_misses() {
        assert_eq!(locate(Path::new("mnist_quickstart")).unwrap(), RecipeSource::Bundled("mnist_quickstart"));
        let p = Path::new("configs/mnist_quickstart.json");
        assert_eq!(locate(p).unwrap(), RecipeSource::File(p));
        assert_eq!(
            locate(Path::new("./mnist_quickstart")).unwrap(),
            RecipeSource::File(Path::new("./mnist_quickstart"))
        );
        let e = locate(Path::new("swrn28-10-6_cifar1O")).unwrap_err().to_string();
        assert!(e.contains("did you mean `swrn28-10-6_cifar10`?") && e.contains("convtrain recipes"), "{e}");
    }
}
