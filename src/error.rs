//! The error type of convtrain. Every failure a user can cause (bad flag, bad file, bad checkpoint)
//! is an [`Error::Input`] and exits with status 2; a diverged run exits 3, an interrupted one 130.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad user input: flag, config file, dataset file, checkpoint. One paragraph, exit code 2.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    #[error("{0}")]
    Diverged(String),
    /// Ctrl-C: a checkpoint was written and the run can be resumed.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// An error raised inside libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Io { .. } => 2,
            Error::Diverged(_) => 3,
            Error::Interrupted(_) => 130,
            Error::Torch(_) => 1,
        }
    }
}

/// Shorthand for an [`Error::Input`] built with `format!`.
#[macro_export]
macro_rules! input_err {
    ($($arg:tt)*) => { $crate::error::Error::Input(format!($($arg)*)) };
}

/// Attaches the path to an I/O error.
pub trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io { path: path.to_path_buf(), source })
    }
}
