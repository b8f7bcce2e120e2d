//! The binary under test (`nthlayer-host`) and the reference it replaces
//! (`nthlayer-workers` 3.0.3), as child processes with their output in a log file.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use tempfile::TempDir;

use crate::util;

/// `$NTHLAYER_HOST_BIN`, else `<workspace>/target/debug/nthlayer-host`.
pub fn host_bin() -> PathBuf {
    std::env::var_os("NTHLAYER_HOST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::workspace_root().join("target/debug/nthlayer-host"))
}

/// The built-in module names, from `modules/builtin.txt` (the one list the host embeds and
/// scripts/build-modules builds), as generated into [`crate::modules`].
pub fn builtin_modules() -> Vec<String> {
    crate::modules::ALL.iter().map(|m| m.name().to_string()).collect()
}

/// `<modules>/observe.wasm`.
pub fn observe_module() -> PathBuf {
    crate::modules::OBSERVE.path()
}

/// `<venv>/bin/nthlayer-workers`.
pub fn reference_bin() -> PathBuf {
    util::venv_dir().join("bin/nthlayer-workers")
}

/// Panic with a helpful message unless the host binary and observe component exist.
pub fn require_host() {
    let bin = host_bin();
    assert!(
        bin.exists(),
        "{} does not exist: build it (cargo build -p nthlayer-host) or set NTHLAYER_HOST_BIN",
        bin.display()
    );
    let m = observe_module();
    assert!(m.exists(), "{} does not exist: run scripts/build-modules or set NTHLAYER_MODULES_DIR", m.display());
}

/// The host's `--state-dir` for `instance_id` in this test: as in production (the default is
/// per instance id), a host restarted under the same id finds its spool, and hosts of
/// different tests never share one. Removed when the test process exits.
pub fn state_dir(instance_id: &str) -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    extern "C" fn remove_root() {
        if let Some(root) = ROOT.get() {
            let _ = std::fs::remove_dir_all(root);
        }
    }
    let root = ROOT.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("nthlayer-host-state-").tempdir().expect("tempdir").keep();
        // SAFETY: registers a plain extern "C" fn with no captured state.
        unsafe { libc::atexit(remove_root) };
        dir
    });
    // Tests of one binary run side by side, and several use the same instance id (swap.rs's
    // two hosts are both "swap-test"): libtest names each test's thread after the test, so
    // the test's name keeps their spools apart while a restart inside one test finds its own.
    let test =
        std::thread::current().name().unwrap_or("main").replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
    root.join(test).join(instance_id)
}

/// The `--instance-id` of a host command line (the host's default when absent).
fn instance_of(args: &[String]) -> &str {
    args.windows(2).find(|w| w[0] == "--instance-id").map_or("workers-1", |w| w[1].as_str())
}

/// A long-running child (`serve`) with its combined output in `<tempdir>/<name>.log`.
/// SIGKILLed on Drop; the log tail is printed if the dropping thread is panicking.
pub struct Proc {
    name: String,
    child: Option<Child>,
    status: Option<ExitStatus>,
    dir: TempDir,
    args: Vec<String>,
}

impl Proc {
    fn spawn(name: &str, program: &Path, args: Vec<String>, env: &[(&str, &str)]) -> Proc {
        let dir = tempfile::Builder::new().prefix(&format!("{name}-")).tempdir().expect("tempdir");
        let mut cmd = Command::new(program);
        cmd.args(&args).current_dir(dir.path());
        if program == host_bin() {
            cmd.env("NTHLAYER_STATE_DIR", state_dir(instance_of(&args)));
            // Hosts of a suite run side by side: each its own port unless a test picks one.
            cmd.env("NTHLAYER_LISTEN", "127.0.0.1:0");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = dir.path().join(format!("{name}.log"));
        let child = util::spawn_logged(&mut cmd, &log).unwrap_or_else(|e| panic!("spawn {}: {e:#}", program.display()));
        Proc { name: name.to_owned(), child: Some(child), status: None, dir, args }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
    pub fn args(&self) -> &[String] {
        &self.args
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.name))
    }
    /// Everything the process printed so far (stdout and stderr interleaved).
    pub fn log(&self) -> String {
        util::read_log(&self.log_path())
    }
    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        util::log_tail(&self.log_path(), n)
    }
    /// Print the log tail to stderr.
    pub fn print_log_tail(&self) {
        util::print_log_tail(&self.name, &self.log_path());
    }

    /// Still running (not exited, not yet reaped)?
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// The exit status if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.status = Some(st);
                }
            }
        }
        self.status
    }

    /// Send SIGTERM (no-op once exited).
    pub fn sigterm(&mut self) {
        if self.try_status().is_none() {
            if let Some(c) = self.child.as_ref() {
                util::signal(c, libc::SIGTERM);
            }
        }
    }

    /// Wait up to `timeout` for exit; None if still running.
    pub fn wait_with_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(st) = self.try_status() {
            return Some(st);
        }
        let st = util::wait_timeout(self.child.as_mut()?, timeout);
        if st.is_some() {
            self.status = st;
        }
        st
    }

    /// SIGTERM and wait up to `timeout`; panics (with the log tail) if it does not exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.sigterm();
        match self.wait_with_timeout(timeout) {
            Some(st) => st,
            None => {
                self.print_log_tail();
                panic!("{} did not exit within {timeout:?} of SIGTERM", self.name);
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if self.status.is_none() {
                let _ = c.kill();
                self.status = c.wait().ok();
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log_tail();
        }
        self.kill();
    }
}

/// `RUST_LOG` for suites that follow single records: each record's `posted …` line is at
/// debug (the sender logs one summary per task and pass at info).
pub const POSTED_LOG: &str = "info,nthlayer_host::outbox::posted=debug";

/// `nthlayer-host serve …` — the binary under test.
pub struct HostProcess(Proc);

impl HostProcess {
    /// `nthlayer-host serve --core-url U --prometheus-url P --instance-id I --no-builtin
    /// --modules <modules>/observe.wasm [extra…]`.
    pub fn serve(core_url: &str, prometheus_url: &str, instance_id: &str, extra: &[&str]) -> Self {
        let m = observe_module().display().to_string();
        Self::serve_modules(core_url, prometheus_url, instance_id, &[m.as_str()], extra)
    }

    /// As [`HostProcess::serve`] with an explicit `--modules` list (paths or globs).
    /// `--no-builtin` keeps the test focused: only these modules run, not every built-in
    /// embedded in the binary. Use [`HostProcess::spawn_raw`] for the drop-in form.
    pub fn serve_modules(
        core_url: &str,
        prometheus_url: &str,
        instance_id: &str,
        modules: &[&str],
        extra: &[&str],
    ) -> Self {
        Self::spawn_raw(serve_args(core_url, prometheus_url, instance_id, modules, extra))
    }

    /// A spooler test component (the outbox suites) granted core and its record kind, retrying
    /// a failed cycle after 1 s, starting at once, logging JSON; Prometheus unreachable.
    pub fn serve_spooler(module: &std::path::Path, core_url: &str, instance_id: &str, extra: &[&str]) -> Self {
        let m = module.display().to_string();
        let mut flags = vec![
            "--grant",
            "spooler=core,assessment:spool_probe",
            "--failed-cycle-retry-seconds",
            "1",
            "--start-jitter-ms",
            "0",
            "--log-format",
            "json",
        ];
        flags.extend_from_slice(extra);
        let env = [("RUST_LOG", POSTED_LOG)];
        Self::serve_modules_env(core_url, "http://127.0.0.1:9", instance_id, &[m.as_str()], &flags, &env)
    }

    /// As [`HostProcess::serve_modules`] with extra environment variables (e.g. measure's
    /// `MEASURE_*` knobs, which the host reads from its environment).
    pub fn serve_modules_env(
        core_url: &str,
        prometheus_url: &str,
        instance_id: &str,
        modules: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        require_host();
        let args = serve_args(core_url, prometheus_url, instance_id, modules, extra);
        HostProcess(Proc::spawn("nthlayer-host", &host_bin(), args, env))
    }

    /// `nthlayer-host <args…>` exactly as given.
    pub fn spawn_raw(args: Vec<String>) -> Self {
        require_host();
        HostProcess(Proc::spawn("nthlayer-host", &host_bin(), args, &[]))
    }

    /// As [`HostProcess::spawn_raw`] with extra environment variables (e.g. `TEMPO_ORG_ID`).
    pub fn spawn_with_env(args: Vec<String>, env: &[(&str, &str)]) -> Self {
        require_host();
        HostProcess(Proc::spawn("nthlayer-host", &host_bin(), args, env))
    }
}

fn serve_args(
    core_url: &str,
    prometheus_url: &str,
    instance_id: &str,
    modules: &[&str],
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "serve",
        "--core-url",
        core_url,
        "--prometheus-url",
        prometheus_url,
        "--instance-id",
        instance_id,
        "--no-builtin",
        "--modules",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(modules.iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

impl Deref for HostProcess {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.0
    }
}
impl DerefMut for HostProcess {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.0
    }
}

/// Intervals that keep the reference's non-observe modules (correlate, learn, measure,
/// respond) from ever running: a module runs when `monotonic_now - 0 >= interval`, and the
/// machine has not been up for 10^9 s. Observe intervals passed by the caller come after
/// these on the command line and win (argparse: last one wins).
pub const REFERENCE_QUIET: [(&str, u64); 7] = [
    ("correlate", 1_000_000_000),
    ("topology-drift", 1_000_000_000),
    ("contract", 1_000_000_000),
    ("outcome", 1_000_000_000),
    ("retrospective", 1_000_000_000),
    ("measure", 1_000_000_000),
    ("respond", 1_000_000_000),
];

/// Short observe intervals for test runs (collect 5, drift 10, topology 20). With the
/// reference, a module only runs at start if the machine's uptime ≥ interval.
pub const FAST_OBSERVE: [(&str, u64); 3] = [("collect", 5), ("drift", 10), ("topology", 20)];

/// `--<name>-interval <secs>` pairs.
pub fn interval_args(intervals: &[(&str, u64)]) -> Vec<String> {
    intervals.iter().flat_map(|(n, s)| [format!("--{n}-interval"), s.to_string()]).collect()
}

/// `nthlayer-workers serve …` — the Python reference (3.0.3), for parity runs.
pub struct ReferenceWorkers(Proc);

impl ReferenceWorkers {
    /// Instance id used by [`ReferenceWorkers::serve`].
    pub const INSTANCE_ID: &'static str = "reference-1";

    /// `nthlayer-workers serve --core-url U --prometheus-url P --instance-id reference-1
    /// <REFERENCE_QUIET> <intervals>` with `NTHLAYER_LLM_STUB=canned`.
    pub fn serve(core_url: &str, prometheus_url: &str, intervals: &[(&str, u64)]) -> Self {
        Self::serve_as(Self::INSTANCE_ID, core_url, prometheus_url, intervals)
    }

    /// As [`ReferenceWorkers::serve_as`] with extra environment variables.
    pub fn serve_as_env(
        instance_id: &str,
        core_url: &str,
        prometheus_url: &str,
        intervals: &[(&str, u64)],
        env: &[(&str, &str)],
    ) -> Self {
        let args = reference_args(instance_id, core_url, prometheus_url, intervals);
        let mut all = vec![("NTHLAYER_LLM_STUB", "canned"), ("PYTHONUNBUFFERED", "1")];
        all.extend_from_slice(env);
        ReferenceWorkers(Proc::spawn("nthlayer-workers", &reference_bin(), args, &all))
    }

    pub fn serve_as(instance_id: &str, core_url: &str, prometheus_url: &str, intervals: &[(&str, u64)]) -> Self {
        let args = reference_args(instance_id, core_url, prometheus_url, intervals);
        ReferenceWorkers(Proc::spawn(
            "nthlayer-workers",
            &reference_bin(),
            args,
            &[("NTHLAYER_LLM_STUB", "canned"), ("PYTHONUNBUFFERED", "1")],
        ))
    }
}

fn reference_args(instance_id: &str, core_url: &str, prometheus_url: &str, intervals: &[(&str, u64)]) -> Vec<String> {
    let bin = reference_bin();
    assert!(bin.exists(), "{} missing (run scripts/setup)", bin.display());
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--core-url".into(),
        core_url.into(),
        "--prometheus-url".into(),
        prometheus_url.into(),
        "--instance-id".into(),
        instance_id.into(),
    ];
    args.extend(interval_args(&REFERENCE_QUIET));
    args.extend(interval_args(intervals));
    args
}

impl Deref for ReferenceWorkers {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.0
    }
}
impl DerefMut for ReferenceWorkers {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.0
    }
}

/// Result of a one-shot command.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; `-signal` if killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

fn run(program: &Path, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    use std::os::unix::process::ExitStatusExt;
    Output {
        code: out.status.code().unwrap_or_else(|| -out.status.signal().unwrap_or(0)),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `nthlayer-host gate <args…> --core-url U --no-builtin --modules <modules>/observe.wasm`,
/// e.g. `gate(url, &["--service", "payment-api"])`. Returns (exit code, stdout, stderr).
pub fn gate(core_url: &str, args: &[&str]) -> (i32, String, String) {
    require_host();
    let mut a: Vec<String> = vec!["gate".into()];
    a.extend(args.iter().map(|s| s.to_string()));
    a.extend([
        "--core-url".into(),
        core_url.into(),
        "--no-builtin".into(),
        "--modules".into(),
        observe_module().display().to_string(),
    ]);
    let o = run(&host_bin(), &a, &[]);
    (o.code, o.stdout, o.stderr)
}

/// `nthlayer-host <args…>` exactly as given, run to completion (the drop-in forms, e.g.
/// `gate --service S --core-url U` with the embedded observe).
pub fn host_command(args: &[&str]) -> Output {
    require_host();
    let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    run(&host_bin(), &a, &[])
}

/// `dist/examples/<name>.wasm`, built from `examples/<name>/` by `scripts/build-examples`.
pub fn example_module(name: &str) -> PathBuf {
    let p = util::workspace_root().join("dist/examples").join(format!("{name}.wasm"));
    assert!(p.exists(), "{} does not exist: run scripts/build-examples", p.display());
    p
}

/// `nthlayer-workers gate <args…> --core-url U` (the reference). Returns (code, stdout, stderr).
pub fn reference_gate(core_url: &str, args: &[&str]) -> (i32, String, String) {
    let mut a: Vec<String> = vec!["gate".into()];
    a.extend(args.iter().map(|s| s.to_string()));
    a.extend(["--core-url".into(), core_url.into()]);
    let o = run(&reference_bin(), &a, &[("PYTHONUNBUFFERED", "1")]);
    (o.code, o.stdout, o.stderr)
}
