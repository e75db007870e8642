//! Shards: which points one process of a sharded sweep runs (`--shard i/n`, or a Slurm job array's
//! task), balanced by estimated cost.
use crate::error::Result;
use crate::input_err;

/// Shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole sweep in one process.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/n` with 0 ≤ i < n.
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || input_err!("--shard {s}: expected i/n with 0 <= i < n (e.g. --shard 0/4 for the first of four).");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard of a Slurm job-array task, from `SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT`
    /// (or `SLURM_ARRAY_TASK_MIN`/`_MAX`), with `_MIN` and `_STEP` mapping task ids onto 0..count:
    /// `--array=1-8` and `--array=0-14:2` both give shards 0..7 of 8. `None` outside an array job.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        if var("SLURM_ARRAY_TASK_ID").is_none() {
            return Ok(None);
        }
        let num = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| input_err!("{name}={v}: expected a non-negative integer."))
                })
                .transpose()
        };
        let id = num("SLURM_ARRAY_TASK_ID")?.unwrap_or_default();
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let count = match (num("SLURM_ARRAY_TASK_COUNT")?, num("SLURM_ARRAY_TASK_MAX")?) {
            (Some(c), _) => c,
            (None, Some(max)) if max >= min => (max - min) / step + 1,
            _ => {
                return Err(input_err!(
                    "SLURM_ARRAY_TASK_ID={id} is set without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX; \
                     give --shard i/n explicitly."
                ))
            }
        };
        let index = id.checked_sub(min).map(|d| d / step).filter(|&i| i < count && (id - min) % step == 0);
        match index {
            Some(index) => Ok(Some(Shard { index, count })),
            None => Err(input_err!(
                "SLURM_ARRAY_TASK_ID={id} does not map onto shards 0..{count} (array min {min}, step {step}); \
                 submit a contiguous array such as --array=0-{} or give --shard i/n.",
                count.saturating_sub(1)
            )),
        }
    }

    /// `--shard` if given, else the Slurm array task, else the whole sweep.
    pub fn resolve(flag: Option<&str>, var: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        match flag {
            Some(s) => Shard::parse(s),
            None => Ok(Shard::from_slurm(var)?.unwrap_or(Shard::ALL)),
        }
    }

    /// The results file this shard writes: `results.csv` for the whole sweep, else `results-<i>.csv`.
    pub fn results_file(&self) -> String {
        if self.count == 1 {
            "results.csv".into()
        } else {
            format!("results-{}.csv", self.index)
        }
    }
}

/// The shard of each point: greedy longest-processing-time assignment — points in decreasing cost
/// (ties: the lower position first), each to the shard with the least cost so far (ties: the lowest
/// shard). Deterministic, so every shard derives the same assignment.
pub fn assign(costs: &[f64], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]).then(a.cmp(&b)));
    let mut load = vec![0.0f64; count.max(1)];
    let mut shard = vec![0; costs.len()];
    for i in order {
        let lightest = (0..load.len()).min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b))).unwrap_or(0);
        load[lightest] += costs[i];
        shard[i] = lightest;
    }
    shard
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn shards_from_flags_and_slurm_arrays() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1", "a/b", "-1/3"] {
            assert!(Shard::parse(bad).unwrap_err().to_string().contains("--shard"), "{bad}");
        }
        let none = env(&[]);
        assert_eq!(Shard::resolve(None, &none).unwrap(), Shard::ALL);
        let task = |id: &str, extra: &[(&'static str, &'static str)]| {
            let mut pairs = vec![("SLURM_ARRAY_TASK_ID", id)];
            pairs.extend_from_slice(extra);
            Shard::from_slurm(env(&pairs))
        };
        let zero_based =
            [("SLURM_ARRAY_TASK_COUNT", "8"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "7")];
        assert_eq!(task("3", &zero_based).unwrap(), Some(Shard { index: 3, count: 8 }));
        let one_based = [("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "8")];
        assert_eq!(task("8", &one_based).unwrap(), Some(Shard { index: 7, count: 8 }));
        let stepped = [("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "14"), ("SLURM_ARRAY_TASK_STEP", "2")];
        assert_eq!(task("6", &stepped).unwrap(), Some(Shard { index: 3, count: 8 }));
        // A flag wins over the environment.
        let e = env(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "8")]);
        assert_eq!(Shard::resolve(Some("1/2"), &e).unwrap(), Shard { index: 1, count: 2 });
        assert!(task("3", &[]).unwrap_err().to_string().contains("--shard"));
        let sparse = [("SLURM_ARRAY_TASK_COUNT", "3"), ("SLURM_ARRAY_TASK_MIN", "1")];
        assert!(task("5", &sparse).unwrap_err().to_string().contains("contiguous"));
        assert_eq!(Shard { index: 1, count: 4 }.results_file(), "results-1.csv");
        assert_eq!(Shard::ALL.results_file(), "results.csv");
    }

    #[test]
    fn longest_processing_time_balances_unequal_costs() {
        // One point as costly as four others: it gets a shard to itself.
        let costs = [1.0, 4.0, 1.0, 1.0, 1.0];
        assert_eq!(assign(&costs, 2), vec![1, 0, 1, 1, 1]);
        // Equal costs spread round-robin in id order.
        assert_eq!(assign(&[2.0; 5], 3), vec![0, 1, 2, 0, 1]);
        // A VGG-like spread (160× between the cheapest and the costliest): loads within the largest job.
        let costs: Vec<f64> = (0..40).map(|i| 1.0 + (i * 37 % 41) as f64 * 4.0).collect();
        let shards = assign(&costs, 4);
        let loads: Vec<f64> = (0..4).map(|s| (0..40).filter(|&i| shards[i] == s).map(|i| costs[i]).sum()).collect();
        let (lo, hi) = (loads.iter().cloned().fold(f64::MAX, f64::min), loads.iter().cloned().fold(0.0, f64::max));
        assert!(hi - lo <= 161.0, "{loads:?}");
        assert_eq!(assign(&costs, 4), shards, "deterministic");
    }
}
