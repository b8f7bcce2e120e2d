//! Small shared helpers: paths, ports, child processes and their log files.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// The workspace root, derived from a manifest directory (never a machine's path).
pub fn workspace_root() -> PathBuf {
    nthlayer_test_paths::workspace_root()
}

/// The Python venv holding nthlayer-core and nthlayer-workers: `$NTHLAYER_VENV`, else
/// `<workspace>/.venv`.
pub fn venv_dir() -> PathBuf {
    std::env::var_os("NTHLAYER_VENV").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".venv"))
}

/// `tests/fixtures/<rel>`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A currently free TCP port on 127.0.0.1 (bind to :0, read it back, release it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// A blocking HTTP client with a short timeout, for talking to core and Prometheus.
pub fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).no_proxy().build().expect("reqwest client")
}

/// Open `path` for a child's stdout and stderr (both go to the same file, appended).
pub fn log_stdio(path: &Path) -> Result<(Stdio, Stdio)> {
    let f =
        File::options().create(true).append(true).open(path).with_context(|| format!("open log {}", path.display()))?;
    let g = f.try_clone()?;
    Ok((Stdio::from(f), Stdio::from(g)))
}

/// Spawn `cmd` with stdin closed and stdout+stderr appended to `log`.
pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<Child> {
    let (out, err) = log_stdio(log)?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    cmd.spawn().with_context(|| format!("spawn {:?}", cmd.get_program()))
}

/// The last `max_lines` lines of a log file ("" if it cannot be read).
pub fn log_tail(path: &Path, max_lines: usize) -> String {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(_) => return String::new(),
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

/// The whole log file as a string ("" if missing).
pub fn read_log(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// Print the tail of `log` to stderr under a header (used on panic paths).
pub fn print_log_tail(what: &str, log: &Path) {
    eprintln!("----- {what}: last lines of {} -----\n{}\n----- end {what} -----", log.display(), log_tail(log, 60));
}

/// Send a signal to a child (no-op if it has already been reaped).
pub fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on a pid we spawned and have not yet waited for.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// Wait for `child` up to `timeout`; `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL. Always reaps the child.
pub fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    signal(child, libc::SIGTERM);
    if let Some(st) = wait_timeout(child, grace) {
        return Some(st);
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Current Unix time in seconds (float).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs_f64()
}

/// Now as core/workers write timestamps: `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
pub fn iso_now() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    chrono::DateTime::from_timestamp(d.as_secs() as i64, d.subsec_nanos())
        .expect("valid timestamp")
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// The `NNNNN` sequence number of an observe id `asm-YYYY-MM-DD-<hex8>-<NNNNN>`.
pub fn asm_seq(id: &str) -> Option<u64> {
    let rest = id.strip_prefix("asm-")?;
    let parts: Vec<&str> = rest.split('-').collect();
    if parts.len() != 5
        || parts[0].len() != 4
        || parts[1].len() != 2
        || parts[2].len() != 2
        || parts[3].len() != 8
        || !parts[3].chars().all(|c| c.is_ascii_hexdigit())
        || parts[4].len() < 5
    {
        return None;
    }
    parts[4].parse().ok()
}

/// Parse an RFC 3339 / Python isoformat timestamp (`…+00:00`, fraction optional) to unix
/// seconds.
pub fn parse_iso(s: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6)
}
