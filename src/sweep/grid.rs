//! The points of a grid sweep (`--set key=v1,v2 …`, their Cartesian product) and the id lists of a
//! variant sweep (`--variants 1-20,50`).
use super::spec::{Point, RESERVED_KEYS, RUNTIME_KEYS};
use crate::config::{setting_value, TrainConfig};
use crate::error::{did_you_mean, Result};
use crate::input_err;
use serde_json::{Map, Value};

/// One swept key and its values, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<Value>,
}

/// Parses `key=v1,v2,…`: the key must be a configuration key; values are split at commas outside
/// brackets and read as JSON where they are JSON (`0.1`, `true`, `[60,120]`), as text otherwise.
pub fn parse_axis(arg: &str) -> Result<Axis> {
    let bad = |why: &str| input_err!("--set {arg}: {why}; expected key=value1,value2,… (e.g. --set seed=0,1,2).");
    let (key, list) = arg.split_once('=').ok_or_else(|| bad("no '='"))?;
    let key = key.trim().replace('-', "_");
    if RESERVED_KEYS.contains(&key.as_str()) || RUNTIME_KEYS.contains(&key.as_str()) {
        return Err(bad(&format!(
            "'{key}' is not swept (it does not change what a run computes, or the sweep sets it)"
        )));
    }
    let known = TrainConfig::known_keys()?;
    if !known.contains(&key) {
        return Err(bad(&format!(
            "'{key}' is not a setting{}; known settings: {}",
            did_you_mean(&key, known.iter().map(String::as_str)),
            known.join(", ")
        )));
    }
    let mut values = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in list.char_indices().chain(std::iter::once((list.len(), ','))) {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                let text = list[start..i].trim();
                if text.is_empty() {
                    return Err(bad("an empty value"));
                }
                values.push(setting_value(text));
                start = i + 1;
            }
            _ => {}
        }
    }
    if values.iter().enumerate().any(|(i, v)| values[..i].contains(v)) {
        return Err(bad("a value is given twice"));
    }
    Ok(Axis { key, values })
}

/// The Cartesian product of `axes` (the first axis varies slowest), numbered from 1, each point's run
/// directory named after its id and settings.
pub fn grid_points(axes: &[Axis]) -> Result<Vec<Point>> {
    if let Some(a) = axes.iter().enumerate().find_map(|(i, a)| axes[..i].iter().any(|b| b.key == a.key).then_some(a)) {
        return Err(input_err!("--set {}: the key is swept twice; give all its values in one --set.", a.key));
    }
    let mut combos: Vec<Vec<Value>> = vec![Vec::new()];
    for axis in axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                axis.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push(v.clone());
                    c
                })
            })
            .collect();
    }
    Ok(combos
        .into_iter()
        .enumerate()
        .map(|(i, values)| {
            let overrides: Map<String, Value> =
                axes.iter().map(|a| a.key.clone()).zip(values.iter().cloned()).collect();
            let settings: Vec<String> =
                axes.iter().zip(&values).map(|(a, v)| format!("{}={}", a.key, label_text(v))).collect();
            Point { id: i + 1, name: run_name(i + 1, &settings), overrides, labels: values, cost: 0.0 }
        })
        .collect())
}

/// A label value as a CSV cell or a name part: text as it is, anything else as JSON.
pub fn label_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `007_seed=1_lr=0.05`: the id, then the settings with characters outside `[A-Za-z0-9.=-]` as `_`,
/// at most 100 characters.
fn run_name(id: usize, settings: &[String]) -> String {
    let mut name = format!("{id:03}");
    for s in settings {
        name.push('_');
        name.extend(s.chars().map(|c| if c.is_ascii_alphanumeric() || ".=-".contains(c) { c } else { '_' }));
    }
    name.chars().take(100).collect()
}

/// Parses an id list such as `1-20,50` (1-based, ranges inclusive) into sorted, distinct ids, each at
/// most `max` (the number of variants).
pub fn parse_ids(list: &str, max: usize) -> Result<Vec<usize>> {
    let bad = |why: String| input_err!("--variants {list}: {why}; expected ids from 1 to {max} such as 1-20,50.");
    let mut ids = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| bad(format!("'{part}' is not an id or a range")));
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo == 0 || hi > max || lo > hi {
            return Err(bad(format!("'{part}' is outside 1..={max} or reversed")));
        }
        ids.extend(lo..=hi);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn axes_read_numbers_lists_and_text_and_refuse_unknown_keys() {
        let a = parse_axis("milestones=[60,120],[30, 60]").unwrap();
        assert_eq!(a.values, vec![json!([60, 120]), json!([30, 60])]);
        let a = parse_axis("schedule=sgdr,cosine").unwrap();
        assert_eq!(a.values, vec![json!("sgdr"), json!("cosine")]);
        assert_eq!(parse_axis("bank-size=1,2").unwrap().key, "bank_size");
        for (arg, needle) in [
            ("learning_rate=1", "not a setting"),
            ("seed", "no '='"),
            ("seed=1,,2", "empty"),
            ("seed=1,1", "twice"),
            ("device=cpu,cuda", "not swept"),
            ("job_id=a", "not swept"),
        ] {
            let e = parse_axis(arg).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("--set"), "{arg}: {e}");
        }
    }

    #[test]
    fn the_product_varies_the_first_axis_slowest() {
        let axes = [parse_axis("seed=0,1").unwrap(), parse_axis("lr=0.1,0.05,0.01").unwrap()];
        let points = grid_points(&axes).unwrap();
        assert_eq!(points.len(), 6);
        assert_eq!(points[4].id, 5);
        assert_eq!(points[4].overrides, json!({"seed": 1, "lr": 0.05}).as_object().cloned().unwrap());
        assert_eq!(points[4].labels, vec![json!(1), json!(0.05)]);
        assert_eq!(points[4].name, "005_seed=1_lr=0.05");
        let lists = grid_points(&[parse_axis("milestones=[60,120]").unwrap()]).unwrap();
        assert_eq!(lists[0].name, "001_milestones=_60_120_");
        assert!(grid_points(&[axes[0].clone(), axes[0].clone()]).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn id_lists() {
        assert_eq!(parse_ids("3-5,1,4", 193).unwrap(), vec![1, 3, 4, 5]);
        for bad in ["0", "5-3", "194", "x", "1-"] {
            assert!(parse_ids(bad, 193).unwrap_err().to_string().contains("--variants"), "{bad}");
        }
    }
}
