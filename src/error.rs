//! The error type of convtrain and its exit codes (README "Exit codes"):
//! 2 bad input (flag, config file, dataset file, checkpoint — the user can fix it), 3 a diverged run,
//! 130 an interrupted run (a checkpoint was written), 70 an internal failure (a bug or an environment
//! problem the user did not cause: serialisation, font loading, an unexpected libtorch error) or
//! memory that ran out even for micro-batches of one image.
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
    /// The device (or host) memory ran out even for the smallest micro-batch.
    #[error("{0}")]
    OutOfMemory(String),
    /// Ctrl-C: a checkpoint was written and the run can be resumed.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A failure that is not the user's input: serialising metadata, loading an embedded font, an
    /// inconsistency inside convtrain. Exit code 70 (EX_SOFTWARE).
    #[error("internal error: {0}")]
    Internal(String),
    /// An error raised inside libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Exit status of a run stopped by an internal failure (sysexits.h EX_SOFTWARE).
pub const EXIT_INTERNAL: i32 = 70;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Io { .. } => 2,
            Error::Diverged(_) => 3,
            Error::Interrupted(_) => 130,
            Error::Internal(_) | Error::Torch(_) | Error::OutOfMemory(_) => EXIT_INTERNAL,
        }
    }
}

/// Shorthand for an [`Error::Input`] built with `format!`.
#[macro_export]
macro_rules! input_err {
    ($($arg:tt)*) => { $crate::error::Error::Input(format!($($arg)*)) };
}

/// Shorthand for an [`Error::Internal`] built with `format!`.
#[macro_export]
macro_rules! internal_err {
    ($($arg:tt)*) => { $crate::error::Error::Internal(format!($($arg)*)) };
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

/// JSON text of `value`; a serialisation failure is an internal error naming `what`.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| internal_err!("cannot serialise {what}: {e}"))
}

/// Pretty JSON text of `value`; see [`to_json`].
pub fn to_json_pretty<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| internal_err!("cannot serialise {what}: {e}"))
}

/// JSON value of `value`; see [`to_json`].
pub fn to_json_value<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| internal_err!("cannot serialise {what}: {e}"))
}

/// The value in the JSON file `path`, `None` when there is no such file; text that does not parse is
/// the error `corrupt` makes of the parser's.
pub fn read_json_if_present<T: serde::de::DeserializeOwned>(
    path: &Path,
    corrupt: impl FnOnce(serde_json::Error) -> Error,
) -> Result<Option<T>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).at(path)?;
    serde_json::from_str(&text).map(Some).map_err(corrupt)
}

/// Whether a libtorch error message reports a failed allocation (CUDA's caching allocator or the CPU's).
pub fn is_out_of_memory(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("can't allocate memory") || m.contains("out of memory") || m.contains("cannot allocate memory")
}

/// The message of a panic payload (a `String` or `&str`; anything else has none). tch's non-fallible
/// calls panic with the libtorch error.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
