//! A real `nthlayer-core serve` (4.0.1) on a free loopback port with a throw-away store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tempfile::TempDir;

use crate::util::{self, http_client};
use crate::wait::try_wait_until;

/// How long to wait for core's `/health` after spawning it.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// An assessment as stored by core (§5): `{id, created_at, kind, service, data}` plus anything
/// else the producer sent (e.g. observe's `producer`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Assessment {
    pub id: String,
    pub created_at: String,
    pub kind: String,
    pub service: String,
    #[serde(default)]
    pub data: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Assessment {
    /// `data[key]` (Null if absent).
    pub fn d(&self, key: &str) -> &Value {
        self.data.get(key).unwrap_or(&Value::Null)
    }
    /// `data.slo_name` as a str ("" if absent).
    pub fn slo_name(&self) -> &str {
        self.d("slo_name").as_str().unwrap_or("")
    }
    /// `data.parent_ids` as strings (empty if absent).
    pub fn parent_ids(&self) -> Vec<String> {
        str_list(self.d("parent_ids"))
    }
    /// The record back as JSON (as core stores it).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("assessment serialises")
    }
}

/// A verdict as stored by core (§4): `id`, `type`, `created_at` required, the rest loose.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub id: String,
    #[serde(rename = "type")]
    pub verdict_type: String,
    pub created_at: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub parent_ids: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One row of `GET /heartbeats` (§7).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Heartbeat {
    pub component: String,
    pub instance_id: String,
    pub last_seen: String,
    #[serde(default)]
    pub state: Value,
    pub health: String,
    pub age_seconds: f64,
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// A running (or stopped-but-restartable) nthlayer-core. Killed on Drop; the store survives
/// [`Core::stop`] / [`Core::restart`] for as long as this value lives.
pub struct Core {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    manifests_dir: PathBuf,
    http: reqwest::blocking::Client,
}

impl Core {
    /// Spawn core serving `manifests_dir` and wait for `/health`. Panics (with the log tail)
    /// if it does not come up.
    ///
    /// The port is picked free, then released for core to bind, so another process of the
    /// suite can take it in between; core then exits with "address already in use", and a
    /// fresh port is tried (a few times) instead of failing the test.
    pub fn start(manifests_dir: &Path) -> Core {
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let mut core = Core::stopped(manifests_dir);
            match core.try_spawn() {
                Ok(()) => return core,
                Err(e) if attempt < ATTEMPTS && core.port_was_taken() => {
                    eprintln!("nthlayer-core: port {} was taken before core bound it ({e:#}); another port", core.port);
                }
                Err(e) => {
                    core.print_log_tail();
                    panic!("nthlayer-core did not start: {e:#}");
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn port_was_taken(&self) -> bool {
        std::fs::read_to_string(self.log_path()).is_ok_and(|l| l.contains("address already in use"))
    }

    /// Allocate a port, store and log without starting the process: the URL is known, but
    /// nothing listens until [`Core::restart`] (for "core down at start-up" tests).
    pub fn stopped(manifests_dir: &Path) -> Core {
        let dir = tempfile::Builder::new().prefix("nthlayer-core-").tempdir().expect("tempdir");
        Core {
            child: None,
            port: util::free_port(),
            dir,
            manifests_dir: manifests_dir.to_path_buf(),
            http: http_client(),
        }
    }

    /// Path of the core executable: `<venv>/bin/nthlayer-core`.
    pub fn binary() -> PathBuf {
        util::venv_dir().join("bin/nthlayer-core")
    }

    fn try_spawn(&mut self) -> Result<()> {
        let bin = Self::binary();
        if !bin.exists() {
            bail!("{} not found (run scripts/setup or set NTHLAYER_VENV)", bin.display());
        }
        std::fs::create_dir_all(self.store_path().parent().unwrap())?;
        let mut cmd = Command::new(&bin);
        cmd.args(["serve", "--host", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .env("NTHLAYER_STORE_PATH", self.store_path())
            .env("NTHLAYER_MANIFESTS_DIR", &self.manifests_dir)
            .env("PYTHONUNBUFFERED", "1")
            .current_dir(self.dir.path());
        let child = util::spawn_logged(&mut cmd, &self.log_path())?;
        self.child = Some(child);
        let ok = try_wait_until(START_TIMEOUT, Duration::from_millis(100), || {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    return Some(Err(anyhow::anyhow!("core exited early: {st}")));
                }
            }
            self.healthy().then_some(Ok(()))
        });
        match ok {
            Some(r) => r,
            None => bail!("no /health within {START_TIMEOUT:?}"),
        }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash). Stable across stop/restart.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The SQLite file (inside the TempDir).
    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("store/nthlayer.db")
    }
    /// Core's combined stdout/stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("core.log")
    }
    pub fn manifests_dir(&self) -> &Path {
        &self.manifests_dir
    }
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kill the process (SIGTERM, then SIGKILL); the store is kept.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            util::terminate(&mut c, Duration::from_secs(5));
        }
    }

    /// (Re)start on the same port with the same store and manifests directory.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.try_spawn() {
            self.print_log_tail();
            panic!("nthlayer-core did not restart: {e:#}");
        }
    }

    /// `GET /health` is 200.
    pub fn healthy(&self) -> bool {
        self.http
            .get(format!("{}/health", self.url()))
            .timeout(Duration::from_secs(2))
            .send()
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    }

    // ----- raw HTTP -----

    /// GET `path` (+ query pairs), returning (status, parsed JSON or string body).
    pub fn get_raw(&self, path: &str, query: &[(&str, &str)]) -> Result<(u16, Value)> {
        let resp = self
            .http
            .get(format!("{}{}", self.url(), path))
            .query(query)
            .send()
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.text()?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    /// GET that must be 2xx.
    pub fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let (st, body) = self.get_raw(path, query)?;
        if !(200..300).contains(&st) {
            bail!("GET {path} -> {st}: {body}");
        }
        Ok(body)
    }

    fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> Result<(u16, Value)> {
        let resp = self
            .http
            .request(method.clone(), format!("{}{}", self.url(), path))
            .json(body)
            .send()
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.text()?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// POST a JSON body; returns (status, body).
    pub fn post_json(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        self.send_json(reqwest::Method::POST, path, body)
    }

    // ----- typed helpers -----

    /// `GET /manifests`.
    pub fn manifests(&self) -> Vec<Value> {
        let v = self.get_json("/manifests", &[]).expect("GET /manifests");
        serde_json::from_value(v).expect("manifests array")
    }

    /// `GET /manifests/{service}` (None on 404).
    pub fn manifest(&self, service: &str) -> Option<Value> {
        match self.get_raw(&format!("/manifests/{service}"), &[]) {
            Ok((200, v)) => Some(v),
            _ => None,
        }
    }

    /// `POST /manifests/-/reload` → `{"changed":[…],"total":N}`.
    pub fn reload_manifests(&self) -> Value {
        let (st, body) =
            self.post_json("/manifests/-/reload", &Value::Object(Map::new())).expect("POST /manifests/-/reload");
        assert_eq!(st, 200, "reload manifests: {body}");
        body
    }

    /// `GET /assessments?service&kind&limit=1000`, newest first (core's order).
    pub fn assessments(&self, service: Option<&str>, kind: Option<&str>) -> Vec<Assessment> {
        self.try_assessments(service, kind).unwrap_or_else(|e| panic!("GET /assessments: {e:#}"))
    }

    /// As [`Core::assessments`] but returns errors (e.g. while core is down).
    pub fn try_assessments(&self, service: Option<&str>, kind: Option<&str>) -> Result<Vec<Assessment>> {
        let mut q = vec![("limit", "1000")];
        if let Some(s) = service {
            q.push(("service", s));
        }
        if let Some(k) = kind {
            q.push(("kind", k));
        }
        let v = self.get_json("/assessments", &q)?;
        Ok(serde_json::from_value(v)?)
    }

    /// `GET /verdicts?service&type&limit=1000`, newest first.
    pub fn verdicts(&self, service: Option<&str>, verdict_type: Option<&str>) -> Vec<Verdict> {
        let mut q = vec![("limit", "1000")];
        if let Some(s) = service {
            q.push(("service", s));
        }
        if let Some(t) = verdict_type {
            q.push(("type", t));
        }
        let v = self.get_json("/verdicts", &q).expect("GET /verdicts");
        serde_json::from_value(v).expect("verdict array")
    }

    /// `GET /heartbeats` (default threshold 30 s).
    pub fn heartbeats(&self) -> Vec<Heartbeat> {
        let v = self.get_json("/heartbeats", &[]).expect("GET /heartbeats");
        serde_json::from_value(v).expect("heartbeat array")
    }

    /// The heartbeat row for (component, instance_id), if any.
    pub fn heartbeat(&self, component: &str, instance_id: &str) -> Option<Heartbeat> {
        self.heartbeats().into_iter().find(|h| h.component == component && h.instance_id == instance_id)
    }

    /// `GET /component-state/{name}` raw JSON; None on 404.
    pub fn component_state(&self, name: &str) -> Option<Value> {
        let (st, body) = self.get_raw(&format!("/component-state/{name}"), &[]).expect("GET /component-state");
        match st {
            200 => Some(body),
            404 => None,
            _ => panic!("GET /component-state/{name} -> {st}: {body}"),
        }
    }

    /// `PUT /component-state/{name}` (core keeps only last_cursor, hysteresis_state, dedup_cache).
    pub fn put_component_state(&self, name: &str, state: &Value) {
        let (st, body) = self
            .send_json(reqwest::Method::PUT, &format!("/component-state/{name}"), state)
            .expect("PUT /component-state");
        assert_eq!(st, 200, "PUT /component-state/{name}: {body}");
    }
}

impl Core {
    /// The last `n` lines of core's log, without uvicorn's 2xx access lines.
    pub fn log_tail(&self, n: usize) -> String {
        let log = util::read_log(&self.log_path());
        let lines: Vec<&str> = log.lines().filter(|l| !is_ok_access_line(l)).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Print [`Core::log_tail`] to stderr.
    pub fn print_log_tail(&self) {
        eprintln!(
            "----- nthlayer-core: {} (2xx access lines omitted) -----\n{}\n----- end nthlayer-core -----",
            self.log_path().display(),
            self.log_tail(60)
        );
    }
}

/// `INFO:     127.0.0.1:1234 - "GET /x HTTP/1.1" 200 OK`
fn is_ok_access_line(l: &str) -> bool {
    l.starts_with("INFO:") && l.contains(" HTTP/1.1\" 2")
}

impl Drop for Core {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log_tail();
        }
        self.stop();
    }
}
