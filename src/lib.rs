//! convtrain: reproduces the training recipes of five CNN papers on libtorch (through `tch`).
//!
//! The tree mirrors the architecture (docs/ARCHITECTURE.md): `error` and `checkpoint` at the ground,
//! `data` (formats, augmentation, loaders) and `models` (one file per paper family, shared layers
//! beside them, one registry) above them, `config` and `train` (optimizer, schedules, run directory,
//! trainer and its hooks) above those, `visualize`, and `commands` — thin over everything, the only
//! place that joins the layers — with `cli` holding the clap definitions.
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod error;
pub mod models;
pub mod precision;
pub mod recipes;
pub mod sweep;
pub mod train;
pub mod visualize;

pub use error::{Error, Result};

/// The libtorch release tch 0.26 is built against.
pub const LIBTORCH_VERSION: &str = "2.13.0";
/// The tch crate version.
pub const TCH_VERSION: &str = "0.26.0";
