//! Sweeps: many training runs that differ in a few settings ("points") — the VGG feature-amount
//! variants (vgg_features.md §2, §5) or a Cartesian grid of settings — each in its own run directory
//! under one sweep directory:
//!
//! ```text
//! <sweep>/sweep.json        what the sweep is: kind, shared settings, every point with its cost
//! <sweep>/runs/<point>/     the point's run (config.json, log.csv, checkpoints) and, once done, result.json
//! <sweep>/results.csv       one row per done point, by id (results-<i>.csv for shard i of a sharded run)
//! ```
//!
//! Crash safety. A point's `result.json`, written atomically once its trainer has returned, is the
//! only record that the point is done. The results CSV is a view rebuilt from those records, at start
//! and after every point, and written whole to a temporary file that is then renamed. A process killed
//! at any instant therefore leaves neither a torn nor a duplicated row, and a re-run of the same command
//! continues where it stopped: done points are skipped; an interrupted point resumes exactly from its
//! last checkpoint (the trainer's own resume); a point whose run ended, or was stopped by a rule, just
//! before its result was written is resumed at its end, where the trainer returns at once with the
//! history from the run's log, and the result is written then.
//!
//! Sharding (Slurm job arrays): every shard derives the same plan from `sweep.json`, runs its share
//! of the points (balanced by estimated cost, [`shard::assign`]) and writes only its own run
//! directories and `results-<i>.csv`; `convtrain sweep collect` merges them ([`results::collect`]).
pub mod grid;
pub mod progress;
pub mod results;
pub mod runner;
pub mod shard;
pub mod spec;
pub mod table;
pub mod vgg_features;
