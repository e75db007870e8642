//! The PyTorch eager side (`--against-pytorch`): `scripts/bench/torch_reference.py`, run by the Python
//! of the set-up environment (the same libtorch), kept alive for the whole bench and driven by one
//! JSON request per line on its stdin, one JSON reply per line on its stdout. convtrain times a
//! repeat, then asks the script for the same repeat, so both sides see the same load.
//!
//! Requests: `hello` (threads, device; the reply says the torch version), `model` (build the row's
//! network in PyTorch, load convtrain's exported weights with `strict=True`, compare the parameter
//! count and the eval-mode logits on convtrain's input), `warm_up`, `train` / `eval` (median seconds
//! of `steps` steps), `pipeline` (seconds of one pass of a per-image `DataLoader`), `epoch` (seconds of
//! training on such a loader), `peak_rss` (the script's `VmHWM`, restarted at every `model`).
//! A reply `{"error": "..."}` is the script's failure, reported with the row.
use crate::error::{IoContext, Result};
use crate::{input_err, internal_err};
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The default interpreter: `$CONVTRAIN_TORCH_HOME/bin/python`, else the set-up's default environment.
pub fn default_python() -> PathBuf {
    match std::env::var_os("CONVTRAIN_TORCH_HOME") {
        Some(home) => PathBuf::from(home).join("bin/python"),
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(format!(".cache/convtrain/torch-{}/bin/python", crate::LIBTORCH_VERSION))
        }
    }
}

/// The script in this source tree.
pub fn default_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench/torch_reference.py")
}

/// Whether the PyTorch model computes what convtrain's does.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Agreement {
    pub parameters: i64,
    /// max |Δlogits| / max |logits| on convtrain's input, eval mode.
    pub relative_difference: f64,
    pub agrees: bool,
}

/// Largest relative difference of the logits accepted as "the same computation".
pub const TOLERANCE: f64 = 1e-4;

/// The running script.
pub struct Reference {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr_log: PathBuf,
    /// Where the exported weights go, removed on drop.
    pub dir: PathBuf,
    pub torch_version: String,
}

impl Reference {
    /// Starts `script` with `python` and says hello: `threads` intra-op threads on `device`.
    pub fn start(python: &Path, script: &Path, threads: usize, device: &str) -> Result<Reference> {
        if !script.is_file() {
            return Err(input_err!(
                "--reference-script {}: no such file (the PyTorch side of --against-pytorch, \
                 scripts/bench/torch_reference.py in the source tree).",
                script.display()
            ));
        }
        let dir = std::env::temp_dir().join(format!("convtrain-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).at(&dir)?;
        let stderr_log = dir.join("reference.stderr");
        let stderr = std::fs::File::create(&stderr_log).at(&stderr_log)?;
        let spawned =
            Command::new(python).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr).spawn();
        let mut child = spawned.map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            input_err!(
                "--python {}: cannot start it ({e}). --against-pytorch needs the Python of the set-up \
                     environment (torch {}, numpy, safetensors): run scripts/setup.sh, or name another with --python.",
                python.display(),
                crate::LIBTORCH_VERSION
            )
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(internal_err!("the reference process has no pipes"));
        };
        let mut r =
            Reference { child, stdin, stdout: BufReader::new(stdout), stderr_log, dir, torch_version: String::new() };
        let hello = r.call(serde_json::json!({"cmd": "hello", "threads": threads, "device": device}))?;
        r.torch_version = hello["torch"].as_str().unwrap_or("?").to_string();
        if r.torch_version.split('+').next() != Some(crate::LIBTORCH_VERSION) {
            return Err(input_err!(
                "--python {}: its torch is {}, convtrain runs libtorch {}; a side-by-side measurement needs the same \
                 libtorch. Use the set-up environment's Python.",
                python.display(),
                r.torch_version,
                crate::LIBTORCH_VERSION
            ));
        }
        Ok(r)
    }

    /// Sends one request and reads its reply.
    pub fn call(&mut self, request: serde_json::Value) -> Result<serde_json::Value> {
        let line = format!("{request}\n");
        let sent = self.stdin.write_all(line.as_bytes()).and_then(|_| self.stdin.flush());
        let mut reply = String::new();
        let read = sent.and_then(|_| self.stdout.read_line(&mut reply));
        if read.is_err() || reply.is_empty() {
            return Err(internal_err!(
                "the PyTorch reference ended unexpectedly; its last words:\n{}",
                self.stderr_tail()
            ));
        }
        let v: serde_json::Value = serde_json::from_str(&reply)
            .map_err(|e| internal_err!("the PyTorch reference answered '{}' ({e})", reply.trim()))?;
        match v.get("error").and_then(|e| e.as_str()) {
            Some(e) => Err(internal_err!("the PyTorch reference failed: {e}")),
            None => Ok(v),
        }
    }

    /// A number of a reply.
    pub fn number(reply: &serde_json::Value, key: &str) -> Result<f64> {
        reply[key].as_f64().ok_or_else(|| internal_err!("the PyTorch reference's reply {reply} has no number '{key}'"))
    }

    /// Builds the row `description` (as `ModelBench::export_for_reference` writes it) in
    /// PyTorch and compares it with convtrain's.
    pub fn load_model(&mut self, description: &serde_json::Value, expected_parameters: i64) -> Result<Agreement> {
        let reply = self.call(serde_json::json!({"cmd": "model", "row": description}))?;
        let parameters = Self::number(&reply, "parameters")? as i64;
        let relative_difference = Self::number(&reply, "relative_difference")?;
        Ok(Agreement {
            parameters,
            relative_difference,
            agrees: parameters == expected_parameters && relative_difference <= TOLERANCE,
        })
    }

    /// Seconds a request's reply reports.
    pub fn seconds(&mut self, request: serde_json::Value) -> Result<f64> {
        let reply = self.call(request)?;
        Self::number(&reply, "seconds")
    }

    /// The script's peak resident memory since its last `model` request.
    pub fn peak_rss(&mut self) -> Result<Option<u64>> {
        Ok(self.call(serde_json::json!({"cmd": "peak_rss"}))?["bytes"].as_u64())
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
