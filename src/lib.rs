//! convtrain: reproduces the training recipes of five CNN papers on libtorch (through `tch`).
//!
//! The tree mirrors the architecture: `data` (formats, augmentation, loaders), `models` (one file per
//! paper family, shared layers beside them, one registry), `train` (optimizer, schedules, checkpoints,
//! logging, engine), `visualize`, and `cli` thin over them.
pub mod error;
pub mod models;
pub mod visualize;

pub use error::{Error, Result};
