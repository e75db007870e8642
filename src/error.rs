//! The error type of convtrain and its exit codes (README "Exit codes"):
//! 2 bad input (flag, config file, dataset file, checkpoint, a size that does not fit in memory — the
//! user can fix it), 3 a diverged run, 128 + N a run stopped by signal N after writing a checkpoint
//! (130 SIGINT, 143 SIGTERM, 129 SIGHUP, 138 SIGUSR1), 70 an internal failure (a bug or an environment
//! problem the user did not cause: serialisation, font loading, an unexpected libtorch error).
//!
//! libtorch failures are kept to one paragraph: [`catch_torch`] turns a libtorch error or a panic of
//! a non-fallible `tch` call into an [`Error`] with the context of what was being done, and
//! [`torch_message`] cuts libtorch's C++ frame list off its messages.
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
    /// libtorch could not allocate what the chosen sizes need (batch, width, image side), even with
    /// micro-batches of one image; the user can fix it (exit 2). Kept apart from [`Error::Input`] so
    /// that a sweep records the point as failed and goes on.
    #[error("{0}")]
    OutOfMemory(String),
    /// A signal (or a caller's interrupt request) stopped the run after a
    /// checkpoint was written; the run can be resumed.
    #[error("interrupted ({}): {}", .0.signal.name(), .0.message)]
    Interrupted(Interruption),
    /// A failure that is not the user's input: serialising metadata, loading an embedded font, an
    /// inconsistency inside convtrain. Exit code 70 (EX_SOFTWARE).
    #[error("internal error: {0}")]
    Internal(String),
    /// An error raised inside libtorch (shown without its C++ frames).
    #[error("libtorch: {}", torch_message(&.0.to_string()))]
    Torch(#[from] tch::TchError),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Exit status of a run stopped by an internal failure (sysexits.h EX_SOFTWARE).
pub const EXIT_INTERNAL: i32 = 70;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Io { .. } | Error::OutOfMemory(_) => 2,
            Error::Diverged(_) => 3,
            Error::Interrupted(i) => i.signal.exit_code(),
            Error::Internal(_) | Error::Torch(_) => EXIT_INTERNAL,
        }
    }
}

/// The signal that asked a run to stop. A caller's own request counts as [`StopSignal::Interrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C), exit 130.
    Interrupt,
    /// SIGTERM (Slurm time limit and preemption, `scancel`, `timeout`, `docker stop`, Kubernetes), exit 143.
    Terminate,
    /// SIGHUP (the terminal went away), exit 129.
    Hangup,
    /// SIGUSR1 (Slurm's `--signal=USR1@<seconds>` warning before the time limit), exit 138.
    User1,
}

impl StopSignal {
    pub const ALL: [StopSignal; 4] =
        [StopSignal::Interrupt, StopSignal::Terminate, StopSignal::Hangup, StopSignal::User1];

    /// The signal number.
    pub fn raw(self) -> i32 {
        match self {
            StopSignal::Interrupt => libc::SIGINT,
            StopSignal::Terminate => libc::SIGTERM,
            StopSignal::Hangup => libc::SIGHUP,
            StopSignal::User1 => libc::SIGUSR1,
        }
    }

    pub fn from_raw(raw: i32) -> Option<StopSignal> {
        StopSignal::ALL.into_iter().find(|s| s.raw() == raw)
    }

    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
            StopSignal::User1 => "SIGUSR1",
        }
    }

    /// 128 + the signal number, the status a shell reports for a process ended by that signal.
    pub fn exit_code(self) -> i32 {
        128 + self.raw()
    }
}

/// Why and where a run stopped early, with the command that continues it.
#[derive(Debug, Clone, PartialEq)]
pub struct Interruption {
    pub signal: StopSignal,
    pub message: String,
}

impl std::fmt::Display for Interruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.signal.name())
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

/// ` (did you mean `x`?)` for the candidate nearest to `word` (Jaro-Winkler similarity at least 0.8, as
/// clap suggests flags), or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
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

/// The first line of a libtorch message: the text before its "Exception raised from" frame list,
/// without tch's `Torch("…")` (panic) or `Internal torch error:` (error) wrapper.
pub fn torch_message(text: &str) -> String {
    let text = text.replace("\\n", "\n").replace("\\\"", "\"");
    let body = match text.find("Torch(\"") {
        Some(i) => text[i + 7..].strip_suffix("\")").unwrap_or(&text[i + 7..]),
        None => text.strip_prefix("Internal torch error: ").unwrap_or(&text),
    };
    let body = body.split("Exception raised from").next().unwrap_or(body);
    let line = body.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    // "[enforce fail at alloc_cpu.cpp:127] err == 0. " names libtorch's source, not the problem.
    match (line.starts_with("[enforce fail"), line.find("] ")) {
        (true, Some(i)) => line[i + 2..].trim_start_matches("err == 0. ").to_string(),
        _ => line.to_string(),
    }
}

/// Whether a libtorch message reports a failed allocation (CPU or CUDA).
pub fn is_out_of_memory(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("can't allocate memory") || m.contains("out of memory") || m.contains("cannot allocate memory")
}

/// The size a libtorch allocation message names ("you tried to allocate 123 bytes"), in bytes.
fn allocation_bytes(message: &str) -> Option<u64> {
    message.match_indices("allocate ").find_map(|(i, m)| {
        let rest = &message[i + m.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty() && rest[digits.len()..].trim_start().starts_with("bytes")).then(|| digits.parse().ok())?
    })
}

/// `bytes` as GiB or MiB for messages.
pub fn human_bytes(bytes: u64) -> String {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// The message of a panic payload (a `String` or `&str`; anything else has none).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Whether a panic came from a non-fallible `tch` call that met a libtorch error (its message wraps
/// a `TchError::Torch`); such panics are reported by [`catch_torch`] and need no panic report.
pub fn is_torch_panic(message: &str) -> bool {
    message.contains("Torch(\"")
}

/// Runs `f`, turning what libtorch throws into one paragraph: a failed allocation becomes an input
/// error saying what was being done (`what`), how much was asked for and what to lower (`advice`);
/// another libtorch error (from an `f_` call or a panicking `tch` call) becomes an input error with
/// its first line — the sizes the user chose are what libtorch refuses; any other panic is an
/// internal error.
pub fn catch_torch<T>(what: &str, advice: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let text = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Err(Error::Torch(e))) => e.to_string(),
        Ok(result) => return result,
        Err(payload) => {
            let m = panic_message(payload.as_ref());
            if !is_torch_panic(&m) {
                return Err(internal_err!("{what}: {m} (a bug in convtrain; please report it)"));
            }
            m
        }
    };
    let line = torch_message(&text);
    if is_out_of_memory(&line) {
        let detail = match allocation_bytes(&line) {
            Some(b) => format!("libtorch could not allocate {} more", human_bytes(b)),
            None => line,
        };
        Err(Error::OutOfMemory(format!("out of memory while {what}: {detail}. {advice}")))
    } else {
        Err(input_err!("libtorch failed while {what}: {line}. {advice}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU_OOM: &str = "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: \
                           you tried to allocate 36864000000 bytes. Error code 12 (Cannot allocate memory)";

    #[test]
    fn libtorch_messages_lose_their_frames_and_wrappers() {
        let frames = format!("{CPU_OOM}\nException raised from allocate at alloc_cpu.cpp:127 (most recent call first):\nframe #0: c10::Error");
        let m = torch_message(&tch::TchError::Torch(frames.clone()).to_string());
        assert!(m.starts_with("DefaultCPUAllocator") && m.ends_with("(Cannot allocate memory)"), "{m}");
        let panic = format!("called `Result::unwrap()` on an `Err` value: {:?}", tch::TchError::Torch(frames));
        assert!(is_torch_panic(&panic));
        assert_eq!(torch_message(&panic), m);
        assert_eq!(allocation_bytes(&m), Some(36_864_000_000));
    }

    #[test]
    fn catch_torch_turns_oom_and_panics_into_one_paragraph() {
        let oom = catch_torch::<()>("building x", "Lower --width.", || {
            Err(Error::Torch(tch::TchError::Torch(CPU_OOM.into())))
        });
        let e = oom.unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "out of memory while building x: libtorch could not allocate 34.3 GiB more. Lower --width."
        );
        let shape = catch_torch::<()>("training", "", || {
            let _ = tch::Tensor::zeros([2, 3], (tch::Kind::Float, tch::Device::Cpu))
                .matmul(&tch::Tensor::zeros([2, 3], (tch::Kind::Float, tch::Device::Cpu)));
            Ok(())
        });
        let m = shape.unwrap_err().to_string();
        assert!(m.starts_with("libtorch failed while training: ") && !m.contains("frame #"), "{m}");
        let bug = catch_torch::<()>("x", "", || panic!("index out of bounds")).unwrap_err();
        assert_eq!(bug.exit_code(), EXIT_INTERNAL);
    }
}
