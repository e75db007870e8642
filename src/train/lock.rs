//! Exclusive run directories: `train` holds an OS lock (`flock`) on `<run>/.lock` for the whole run,
//! taken before the directory is inspected or written. The kernel releases it when the process ends,
//! however it ends (SIGKILL included), so a lock is never stale. The lock file names its holder (pid,
//! host, start time) for the message a second `train` gets. Read-only commands take no lock.
use crate::error::{IoContext, Result};
use crate::input_err;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// A held lock on a run directory. When [`RunLock::acquire`] created the directory, it counts as not
/// yet holding a run until [`RunLock::keep`] is called: dropping the lock before that removes the lock
/// file and the directories it created, so a start that failed leaves nothing behind.
#[derive(Debug)]
pub struct RunLock {
    /// The locked descriptor: the lock lasts as long as it is open.
    _file: File,
    dir: PathBuf,
    /// Directories this lock created, deepest first.
    created: Vec<PathBuf>,
    kept: bool,
}

impl RunLock {
    /// Locks `dir`, creating it (and its missing parents) when `create`; a directory another process
    /// holds is an input error naming the holder.
    pub fn acquire(dir: &Path, create: bool) -> Result<RunLock> {
        let mut created = Vec::new();
        if create {
            let mut missing = dir.to_path_buf();
            while !missing.as_os_str().is_empty() && !missing.exists() {
                created.push(missing.clone());
                missing = missing.parent().map(Path::to_path_buf).unwrap_or_default();
            }
            std::fs::create_dir_all(dir).map_err(|e| {
                input_err!("{}: cannot create the run directory ({e}); choose a writable --runs-dir.", dir.display())
            })?;
        }
        match lock_file(dir) {
            Ok(file) => Ok(RunLock { _file: file, dir: dir.to_path_buf(), kept: created.is_empty(), created }),
            Err(e) => {
                // Only empty directories go; a directory another process holds keeps its lock file.
                created.iter().for_each(|d| drop(std::fs::remove_dir(d)));
                Err(e)
            }
        }
    }

    /// The directory now holds a run: leave it (and the lock file) in place when the lock is dropped.
    pub fn keep(&mut self) {
        self.kept = true;
    }

    /// The directory no longer holds a run (a start that failed before its first checkpoint).
    pub fn unkeep(&mut self) {
        self.kept = false;
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if !self.kept {
            // Removed while still locked, so nobody can take the lock on a file that is going away.
            let _ = std::fs::remove_file(self.dir.join(LOCK_FILE));
            for d in &self.created {
                let _ = std::fs::remove_dir(d);
            }
        }
        // Closing `_file` afterwards releases the lock.
    }
}

/// Opens and locks `<dir>/.lock` and writes the holder into it.
fn lock_file(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    // A holder that removed its lock file between our open and our flock leaves us a lock on a deleted
    // file: then retry on the file now at the path.
    for _ in 0..100 {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                input_err!("{}: cannot create the lock file ({e}); the run directory must be writable.", path.display())
            })?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::WouldBlock {
                return Err(input_err!(
                    "{}: cannot lock the run directory ({err}); its file system must support file locks (flock).",
                    path.display()
                ));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "another process".to_string(),
                h => h.to_string(),
            };
            return Err(input_err!(
                "{}: the run directory is in use by another convtrain train ({holder}). Wait for it to finish, \
                 stop it (SIGTERM or Ctrl-C checkpoints it), or choose another --job-id. Read-only commands \
                 (evaluate, export, visualize) may run beside it.",
                dir.display()
            ));
        }
        let same = match (file.metadata(), std::fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if same {
            let holder = format!("pid {} on {}, started {}", std::process::id(), hostname(), utc_now_iso());
            file.set_len(0).at(&path)?;
            file.rewind().at(&path)?;
            file.write_all(format!("{holder}\n").as_bytes()).at(&path)?;
            return Ok(file);
        }
    }
    Err(input_err!("{}: could not lock the run directory (its lock file keeps changing).", dir.display()))
}

/// This machine's host name (for the lock file).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..end]).to_string()
    } else {
        "unknown host".into()
    }
}

/// Now as `YYYY-MM-DDThh:mm:ssZ`.
pub fn utc_now_iso() -> String {
    let (y, m, d, hh, mm, ss) = super::utc_now();
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_a_failed_start_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("runs/job");
        let mut first = RunLock::acquire(&dir, true).unwrap();
        let e = RunLock::acquire(&dir, true).unwrap_err().to_string();
        assert!(e.contains("in use") && e.contains(&format!("pid {}", std::process::id())), "{e}");
        first.keep();
        drop(first);
        assert!(dir.join(LOCK_FILE).is_file(), "a kept run keeps its lock file");
        let mut second = RunLock::acquire(&dir, true).unwrap();
        second.unkeep();
        drop(second);
        assert!(dir.exists() && !dir.join(LOCK_FILE).exists(), "an existing directory is not removed");
        std::fs::remove_dir(&dir).unwrap();
        std::fs::remove_dir(root.path().join("runs")).unwrap();
        let third = RunLock::acquire(&dir, true).unwrap();
        drop(third);
        assert!(!root.path().join("runs").exists(), "directories the lock created are removed again");
    }
}
