//! Compiling a module in a child process: the host's own memory never holds Cranelift.
//!
//! A cold compile of the built-ins (the first start after an upgrade, or a module dropped
//! in) raised the serving host's peak from 46 to 63 MB and left ~10 MB of the compiler's
//! heap behind for good (docs/BENCH.md, "Memory"); every hot swap of a new version did
//! the same again. Compiling is also the one step that feeds a module's bytes, still
//! unchecked, to a large optimising compiler: a module built to make Cranelift allocate
//! or loop would do so inside the process that serves every other module. So when the
//! binary asks for it ([`use_child`], set by `main`), the artifact cache hands a miss to
//! `nthlayer-host __compile`: the same executable (`/proc/self/exe`, so a binary replaced
//! on disk by an upgrade still compiles for the engine that is running), which builds the
//! same engine, precompiles the wasm it reads on stdin and writes the artifact to stdout.
//! The host stores it in the cache and maps that file as it would any cached artifact (or,
//! when the cache cannot be written, loads it from the bytes, as a compile in process
//! did); the child's memory is the kernel's again the moment it exits.
//!
//! A library user (tests, other embedders) compiles in process unless it opts in.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

static CHILD_EXE: OnceLock<PathBuf> = OnceLock::new();

/// The name of the hidden subcommand the child runs.
pub const SUBCOMMAND: &str = "__compile";

/// Compile in child processes running `exe`, which must be this same binary (it must
/// build the same engine, or the artifact will not load: the cache then compiles in
/// process). Call once at start; later calls are ignored.
pub fn use_child(exe: PathBuf) {
    let _ = CHILD_EXE.set(exe);
}

/// The executable compiles run in, when [`use_child`] was called.
pub fn child_exe() -> Option<&'static Path> {
    CHILD_EXE.get().map(PathBuf::as_path)
}

/// This running binary, wherever its file went since it started.
pub fn this_exe() -> PathBuf {
    let proc = PathBuf::from("/proc/self/exe");
    if proc.exists() {
        return proc;
    }
    std::env::current_exe().unwrap_or(proc)
}

/// Why a compile in a child did not give an artifact.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The child could not be started (no `exec` in this sandbox, no process slots): the
    /// cache compiles in process rather than refuse every module.
    #[error("cannot start the compiler process {exe}: {source}")]
    Start { exe: PathBuf, source: std::io::Error },
    /// The compiler refused the module, or died compiling it: never retried in process.
    #[error("{0}")]
    Refused(String),
}

/// How long a compile may take before its child is killed: a Python component (~20 MB of
/// wasm) compiles in tens of seconds on two busy cores; a module that keeps the optimiser
/// busy for longer is refused rather than holding its load forever.
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs `exe __compile` with `wasm` on its stdin, at most `timeout`, and returns the
/// artifact it wrote to its stdout. A refusal carries what the compiler said (a module
/// Cranelift refuses reads as it would in process), or how the child died.
pub fn compile_in_child(exe: &Path, wasm: &[u8], timeout: Duration) -> Result<Vec<u8>, ChildError> {
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ChildError::Start { exe: exe.to_path_buf(), source })?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    // Fed and drained from other threads: a child that fails early stops reading its stdin,
    // and one that writes more than a pipe holds waits for a reader; either would block
    // this thread. Scoped, so the module's bytes are lent, not copied.
    std::thread::scope(|scope| {
        scope.spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(wasm);
            }
        });
        let artifact = scope.spawn(move || read_all(stdout));
        let said = scope.spawn(move || read_all(stderr));
        let status = wait(&mut child, timeout);
        let artifact = artifact.join().unwrap_or_default();
        let said = String::from_utf8_lossy(&said.join().unwrap_or_default()).trim().to_string();
        let status = status?;
        if status.success() && !artifact.is_empty() {
            return Ok(artifact);
        }
        Err(ChildError::Refused(match status.code() {
            Some(_) if !said.is_empty() => said,
            Some(0) => "the compiler process wrote no artifact".to_string(),
            Some(code) => format!("the compiler process exited with {code} and said nothing"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                let signal = status.signal().unwrap_or(0);
                let said = if said.is_empty() { String::new() } else { format!(": {said}") };
                format!("the compiler process was killed by signal {signal} (out of memory?){said}")
            }
        }))
    })
}

/// The child's exit, or its end at `timeout`: killed, so its pipes close and the threads
/// reading them finish.
fn wait(child: &mut std::process::Child, timeout: Duration) -> Result<std::process::ExitStatus, ChildError> {
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ChildError::Refused(format!(
                    "compiling took longer than {} s; the compiler process was stopped",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => return Err(ChildError::Refused(format!("waiting for the compiler process: {e}"))),
        }
    }
}

fn read_all(pipe: Option<impl Read>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut bytes);
    }
    bytes
}

/// How often a running compile is looked at: a compile takes tens of milliseconds at least.
const POLL: Duration = Duration::from_millis(5);

/// The child's side: compile stdin's wasm with this binary's engine, the artifact to stdout.
pub fn child_main() -> Result<()> {
    let mut wasm = Vec::new();
    std::io::stdin().read_to_end(&mut wasm).context("read the module from stdin")?;
    let engine = super::engine::new_engine()?;
    let bytes = engine.precompile_component(&wasm)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes).context("write the artifact to stdout")?;
    out.flush().context("write the artifact to stdout")
}

/// Written beside, then renamed into place: a reader never maps half an artifact.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
