//! Learning-rate schedules, evaluated as pure functions of the position in training so that a resumed
//! run recomputes exactly the lr the uninterrupted run used.
use crate::error::Result;
use crate::input_err;
use std::f64::consts::PI;

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Constant,
    /// lr = base · Π gamma_i over milestones m_i ≤ epoch (0-based). This is the SWRN `adjust_learning_rate`
    /// (swrn.md §4) and, with milestones at 50 %/75 %, the PyTorch-0.4 MultiStepLR stepping of the
    /// checkered demos (checkered.md §7 pitfall 9). DiracNet's torchnet decay "before 1-indexed epoch
    /// m" is milestone m−1 here (diracnet.md §5.4).
    MultiStep {
        milestones: Vec<usize>,
        gammas: Vec<f64>,
    },
    /// SGDR updated every mini-batch, with the quirks of the VGG sweep (vgg_features.md §3.3): the
    /// step denominator is ⌊N/batch⌋ (so the last partial batch overshoots) and the first batch of a new
    /// cycle still uses the end-of-cycle lr.
    Sgdr {
        t0: usize,
        t_mult: usize,
        lr_min: f64,
    },
    /// Cosine annealing from base to lr_min over all steps, updated every step.
    Cosine {
        lr_min: f64,
    },
}

/// An SGDR run that stops inside a cycle (see [`Schedule::unfinished_cycle`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnfinishedCycle {
    /// The epoch the cycle started at (0, or the end of the cycle before).
    pub restart_before: usize,
    /// The epoch the cycle ends at: the next total of whole cycles.
    pub restart_after: usize,
    /// The lr at the end of the run's last epoch.
    pub end_lr: f64,
    /// The floor a whole cycle ends at.
    pub lr_min: f64,
}

/// Where an optimizer step sits in training.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    /// 0-based epoch.
    pub epoch: usize,
    /// 1-based mini-batch index within the epoch.
    pub batch: usize,
    /// Mini-batches per epoch (including a last partial one).
    pub batches_per_epoch: usize,
    /// ⌊training examples / batch size⌋, the SGDR denominator.
    pub full_batches_per_epoch: usize,
    pub total_epochs: usize,
}

impl Schedule {
    /// The schedule `name` (`constant`, `multistep`, `sgdr`, `cosine`) with its parameters; the
    /// error names the flag that is wrong.
    pub fn new(
        name: &str,
        milestones: &[usize],
        gammas: &[f64],
        sgdr_t0: usize,
        sgdr_t_mult: usize,
        lr_min: f64,
    ) -> Result<Schedule> {
        Ok(match name {
            "constant" => Schedule::Constant,
            "multistep" => {
                let gammas = if gammas.len() == 1 { vec![gammas[0]; milestones.len()] } else { gammas.to_vec() };
                if gammas.len() != milestones.len() {
                    return Err(input_err!(
                        "--gammas: need one gamma per milestone ({milestones:?}), got {gammas:?}."
                    ));
                }
                if milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(input_err!(
                        "--schedule: milestones must be strictly increasing epochs, got {milestones:?}."
                    ));
                }
                Schedule::MultiStep { milestones: milestones.to_vec(), gammas }
            }
            "sgdr" => {
                if sgdr_t0 == 0 || sgdr_t_mult == 0 {
                    return Err(input_err!("--sgdr-t0 and --sgdr-t-mult: must be at least 1."));
                }
                Schedule::Sgdr { t0: sgdr_t0, t_mult: sgdr_t_mult, lr_min }
            }
            "cosine" => Schedule::Cosine { lr_min },
            other => {
                return Err(input_err!(
                    "--schedule: '{other}' is not a schedule; use multistep, sgdr, cosine, constant, or a comma list of milestone epochs (e.g. 60,120,160)."
                ))
            }
        })
    }

    /// The lr of the optimizer step at `pos`.
    pub fn lr(&self, base: f64, pos: Position) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::MultiStep { milestones, gammas } => {
                milestones.iter().zip(gammas).filter(|(m, _)| **m <= pos.epoch).fold(base, |lr, (_, g)| lr * g)
            }
            Schedule::Sgdr { t0, t_mult, lr_min } => {
                let (mut cycle_epoch, mut cycle_len) = sgdr_state(pos.epoch, *t0, *t_mult);
                if pos.batch > 1 && cycle_epoch > 0 && cycle_epoch % cycle_len == 0 {
                    cycle_len *= t_mult;
                    cycle_epoch = 0;
                }
                let cur = cycle_epoch as f64 + pos.batch as f64 / pos.full_batches_per_epoch.max(1) as f64;
                lr_min + 0.5 * (base - lr_min) * (1.0 + (PI * cur / cycle_len as f64).cos())
            }
            Schedule::Cosine { lr_min } => {
                let total = (pos.total_epochs * pos.batches_per_epoch).max(1) as f64;
                let t = (pos.epoch * pos.batches_per_epoch + pos.batch - 1) as f64;
                lr_min + 0.5 * (base - lr_min) * (1.0 + (PI * t / total).cos())
            }
        }
    }

    /// Whether the lr of a step depends on the run's total length (cosine annealing over all steps):
    /// changing `epochs` then bends the schedule of the epochs already trained. Multi-step and SGDR
    /// (whose cycles are fixed lengths) do not.
    pub fn depends_on_total(&self) -> bool {
        matches!(self, Schedule::Cosine { .. })
    }

    /// For SGDR, where a run of `epochs` epochs stops when that is inside a cycle rather than on a
    /// restart (whole cycles: with t0 10 and t_mult 2, runs of 10, 30, 70, 150, … epochs end on one):
    /// the restarts around it and the lr the run ends at (from `base`, at the end of its last epoch).
    /// `None` for a run of whole cycles, and for schedules without cycles.
    pub fn unfinished_cycle(&self, base: f64, epochs: usize) -> Option<UnfinishedCycle> {
        let Schedule::Sgdr { t0, t_mult, lr_min } = *self else { return None };
        let (mut from, mut len) = (0usize, t0);
        while from.saturating_add(len) < epochs {
            from += len;
            len = len.saturating_mul(t_mult);
        }
        let to = from.saturating_add(len);
        (to != epochs).then(|| UnfinishedCycle {
            restart_before: from,
            restart_after: to,
            end_lr: lr_min + 0.5 * (base - lr_min) * (1.0 + (PI * (epochs - from) as f64 / len as f64).cos()),
            lr_min,
        })
    }

    /// A short description of the lr over a run of `epochs` epochs from `base` (for `--dry-run`).
    pub fn describe(&self, base: f64, epochs: usize) -> String {
        match self {
            Schedule::Constant => format!("lr {base} throughout"),
            Schedule::MultiStep { milestones, gammas } => {
                let steps: Vec<String> =
                    milestones.iter().zip(gammas).map(|(m, g)| format!("×{g} at epoch {m}")).collect();
                if steps.is_empty() {
                    format!("lr {base} throughout")
                } else {
                    steps.join(", ")
                }
            }
            Schedule::Sgdr { t0, t_mult, lr_min } => {
                format!("cosine cycles of {t0} epochs ×{t_mult} each restart, floor {lr_min}, updated per mini-batch")
            }
            Schedule::Cosine { lr_min } => {
                format!("cosine from {base} to {lr_min} over {epochs} epochs, per mini-batch")
            }
        }
    }

    /// True when momentum buffers must be cleared before the first step of `epoch` (a milestone).
    pub fn is_milestone(&self, epoch: usize) -> bool {
        matches!(self, Schedule::MultiStep { milestones, .. } if milestones.contains(&epoch))
    }
}

/// (epochs into the current cycle, cycle length) at the start of `epoch`, before the first batch's
/// restart check.
fn sgdr_state(epoch: usize, t0: usize, t_mult: usize) -> (usize, usize) {
    let (mut e, mut t) = (0usize, t0);
    for _ in 0..epoch {
        if e > 0 && e % t == 0 {
            t *= t_mult;
            e = 0;
        }
        e += 1;
    }
    (e, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(epoch: usize, batch: usize, per: usize, full: usize) -> Position {
        Position { epoch, batch, batches_per_epoch: per, full_batches_per_epoch: full, total_epochs: 200 }
    }

    #[test]
    fn swrn_multistep_matches_spec_table() {
        // swrn.md §4: 0.1 for 0–59, 0.02 for 60–119, 0.004 for 120–159, 0.0008 for 160–199.
        let s = Schedule::MultiStep { milestones: vec![60, 120, 160], gammas: vec![0.2; 3] };
        for (e, want) in
            [(0, 0.1), (59, 0.1), (60, 0.02), (119, 0.02), (120, 0.004), (159, 0.004), (160, 0.0008), (199, 0.0008)]
        {
            let got = s.lr(0.1, pos(e, 1, 352, 351));
            assert!((got - want).abs() < 1e-12, "epoch {e}: {got} vs {want}");
        }
        assert!(s.is_milestone(60) && !s.is_milestone(61));
    }

    #[test]
    fn checkered_torch04_stepping() {
        // checkered.md §5.1: epochs 1–50 at 0.1, 51–75 at 0.01, 76–100 at 0.001 (1-based).
        let s = Schedule::MultiStep { milestones: vec![50, 75], gammas: vec![0.1, 0.1] };
        assert_eq!(s.lr(0.1, pos(49, 1, 10, 10)), 0.1);
        assert!((s.lr(0.1, pos(50, 1, 10, 10)) - 0.01).abs() < 1e-15);
        assert!((s.lr(0.1, pos(75, 1, 10, 10)) - 0.001).abs() < 1e-15);
    }

    #[test]
    fn sgdr_matches_vgg_sweep_table() {
        // vgg_features.md §3.3, CIFAR-10: 391 batches per epoch, denominator 390.
        let s = Schedule::Sgdr { t0: 10, t_mult: 2, lr_min: 1e-5 };
        let table = [
            (0, 1, 0.01, 1e-4),
            (5, 1, 0.00500098, 1e-6),
            (9, 390, 1e-5, 1e-9),
            (10, 1, 1.00016e-5, 1e-9),
            (10, 2, 0.01, 1e-6),
            (29, 1, 7.118e-5, 1e-7),
            (149, 391, 1e-5, 1e-9),
        ];
        for (e, b, want, tol) in table {
            let got = s.lr(0.01, pos(e, b, 391, 390));
            assert!((got - want).abs() < tol, "epoch {e} batch {b}: {got} vs {want}");
        }
    }

    #[test]
    fn sgdr_runs_of_whole_cycles_end_on_a_restart() {
        let s = Schedule::Sgdr { t0: 10, t_mult: 2, lr_min: 1e-5 };
        for whole in [10, 30, 70, 150, 310] {
            assert_eq!(s.unfinished_cycle(0.01, whole), None, "{whole}");
        }
        let c = s.unfinished_cycle(0.01, 50).unwrap();
        assert_eq!((c.restart_before, c.restart_after), (30, 70));
        // Half-way through the 40-epoch cycle: the mean of base and floor.
        assert!((c.end_lr - (0.01 + 1e-5) / 2.0).abs() < 1e-12, "{c:?}");
        let c = s.unfinished_cycle(0.01, 5).unwrap();
        assert_eq!((c.restart_before, c.restart_after), (0, 10));
        let c = s.unfinished_cycle(0.01, 31).unwrap();
        assert_eq!((c.restart_before, c.restart_after), (30, 70));
        assert!(c.end_lr > 0.0099, "one epoch into a cycle the lr is near the base: {c:?}");
        // The end-of-run lr agrees with the schedule's last step (one full batch per epoch).
        let last = Position { epoch: 49, batch: 2, batches_per_epoch: 2, full_batches_per_epoch: 2, total_epochs: 50 };
        assert!((s.lr(0.01, last) - s.unfinished_cycle(0.01, 50).unwrap().end_lr).abs() < 1e-12);
        // Fixed-length cycles: every multiple of t0 is a restart.
        let flat = Schedule::Sgdr { t0: 4, t_mult: 1, lr_min: 0.0 };
        assert_eq!(flat.unfinished_cycle(0.1, 12), None);
        assert_eq!(flat.unfinished_cycle(0.1, 13).map(|c| (c.restart_before, c.restart_after)), Some((12, 16)));
        let other = [Schedule::Cosine { lr_min: 0.0 }, Schedule::Constant];
        assert!(other.iter().all(|s| s.unfinished_cycle(0.1, 7).is_none()));
    }

    #[test]
    fn cosine_goes_from_base_to_min() {
        let s = Schedule::Cosine { lr_min: 0.001 };
        let p =
            |e, b| Position { epoch: e, batch: b, batches_per_epoch: 10, full_batches_per_epoch: 10, total_epochs: 4 };
        assert!((s.lr(0.1, p(0, 1)) - 0.1).abs() < 1e-12);
        assert!((s.lr(0.1, p(2, 1)) - 0.0505).abs() < 1e-12);
        assert!(s.lr(0.1, p(3, 10)) < 0.0012);
    }
}
