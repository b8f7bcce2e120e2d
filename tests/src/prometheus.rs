//! A real Prometheus 2.42 (Debian package) on a free loopback port.
//!
//! * History is backfilled *before* start-up with
//!   `promtool tsdb create-blocks-from openmetrics <file> <data-dir>` from an OpenMetrics text
//!   built with [`History`] (timestamps in seconds, ends with `# EOF`). promtool cuts 2 h blocks.
//!   Keep backfilled samples strictly older than the head (≥ 3 h before now): the scenario
//!   ends its history at `floor_hour(now) - 3h`. `--storage.tsdb.retention.time=90d` stops the
//!   30-day-old blocks from being deleted at start-up.
//! * Backfilled series are sampled every `step` (1 h in the scenario, like the reference's fake
//!   Prometheus). Prometheus only finds a sample within `--query.lookback-delta` (default 5 m)
//!   of each evaluation timestamp, and a `query_range` with `start = now - 30d` is not aligned
//!   to the sample grid, so the lookback is raised to the history step (1 h). This does not
//!   matter for the scraped exporter series (scraped every second, stale markers on removal).
//! * Live series come from scraping [`crate::exporter::Exporter`] targets every second.
//!
//! Blocks are cached under `<workspace>/target/nthlayer-tests/blocks/<hash of the text>`, so
//! several Prometheus instances (and test binaries) in the same hour share one promtool run.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tempfile::TempDir;

use crate::exporter::{fmt_value, render_labels};
use crate::util::{self, http_client};
use crate::wait::try_wait_until;

/// Rendered labels and `(unix seconds, value)` samples of one series.
type Series = (String, Vec<(i64, f64)>);

/// OpenMetrics history for promtool backfill: gauge families of (labels → samples).
#[derive(Debug, Clone, Default)]
pub struct History {
    families: BTreeMap<String, Vec<Series>>,
    max_step: i64,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    /// Add one gauge series; `samples` are `(unix seconds, value)` and get sorted by time.
    pub fn series(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        samples: impl IntoIterator<Item = (i64, f64)>,
    ) -> &mut Self {
        let mut s: Vec<(i64, f64)> = samples.into_iter().collect();
        s.sort_by_key(|p| p.0);
        for w in s.windows(2) {
            self.max_step = self.max_step.max(w[1].0 - w[0].0);
        }
        self.families.entry(name.to_owned()).or_default().push((render_labels(labels), s));
        self
    }

    /// Add a series sampled every `step` seconds on `[start, end]`, value `f(t)`.
    pub fn series_fn(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        start: i64,
        end: i64,
        step: i64,
        f: impl Fn(i64) -> f64,
    ) -> &mut Self {
        assert!(step > 0 && end >= start);
        let pts: Vec<(i64, f64)> = (0..=(end - start) / step)
            .map(|i| {
                let t = start + i * step;
                (t, f(t))
            })
            .collect();
        self.series(name, labels, pts)
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// The largest gap between consecutive samples of any series (seconds).
    pub fn max_step(&self) -> i64 {
        self.max_step
    }

    /// OpenMetrics text: one `# TYPE … gauge` per family, samples with second timestamps,
    /// terminated by `# EOF`.
    pub fn to_openmetrics(&self) -> String {
        let mut out = String::new();
        for (name, series) in &self.families {
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (labels, samples) in series {
                for (t, v) in samples {
                    let _ = writeln!(out, "{name}{labels} {} {t}", fmt_value(*v));
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

/// Options for [`Prometheus::start`].
#[derive(Debug, Clone)]
pub struct PromOpts {
    /// Backfilled with promtool before start-up.
    pub history: Option<History>,
    /// `host:port` targets scraped as job `exporter` every `scrape_interval`.
    pub scrape_targets: Vec<String>,
    pub scrape_interval: Duration,
    /// `host:port` of nthlayer-host surfaces scraped as job `nthlayer-host` (not waited for:
    /// a host usually starts after Prometheus).
    pub host_targets: Vec<String>,
    /// `--query.lookback-delta`; default: 5m, or the history's step if that is larger.
    pub lookback_delta: Option<String>,
    /// PromQL queries that must return a non-empty result before `start` returns
    /// (besides `up{job="exporter"} == 1` for every target).
    pub wait_for: Vec<String>,
    pub extra_args: Vec<String>,
}

impl Default for PromOpts {
    fn default() -> Self {
        PromOpts {
            history: None,
            scrape_targets: Vec::new(),
            scrape_interval: Duration::from_secs(1),
            host_targets: Vec::new(),
            lookback_delta: None,
            wait_for: Vec::new(),
            extra_args: Vec::new(),
        }
    }
}

/// How long to wait for readiness and for the first scrapes.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Prometheus; killed on Drop (log tail printed if the thread is panicking).
pub struct Prometheus {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    args: Vec<String>,
    wait_for: Vec<String>,
    http: reqwest::blocking::Client,
}

impl Prometheus {
    /// Backfill (if asked), write prometheus.yml, start, and wait until ready and until the
    /// exporter targets are up and every `wait_for` query has data. Panics on failure.
    pub fn start(opts: PromOpts) -> Prometheus {
        match Self::try_start(opts) {
            Ok(p) => p,
            Err(e) => panic!("prometheus did not start: {e:#}"),
        }
    }

    pub fn try_start(opts: PromOpts) -> Result<Prometheus> {
        let dir = tempfile::Builder::new().prefix("nthlayer-prom-").tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        if let Some(h) = opts.history.as_ref().filter(|h| !h.is_empty()) {
            backfill(h, &data).context("promtool backfill")?;
        }
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config_yaml(&opts))?;
        let port = util::free_port();
        let lookback = opts.lookback_delta.clone().unwrap_or_else(|| {
            let step = opts.history.as_ref().map(|h| h.max_step()).unwrap_or(0);
            if step > 300 {
                format!("{step}s")
            } else {
                "5m".to_owned()
            }
        });
        let mut args = vec![
            format!("--config.file={}", cfg.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--storage.tsdb.retention.time=90d".to_owned(),
            format!("--query.lookback-delta={lookback}"),
            "--web.enable-lifecycle".to_owned(),
        ];
        args.extend(opts.extra_args.iter().cloned());
        let mut wait_for: Vec<String> =
            opts.scrape_targets.iter().map(|t| format!("up{{job=\"exporter\",instance=\"{t}\"}} == 1")).collect();
        wait_for.extend(opts.wait_for.iter().cloned());
        let mut p = Prometheus { child: None, port, dir, args, wait_for, http: http_client() };
        // The port is picked free and released for Prometheus to bind, so another process of
        // the suite may take it in between: then a fresh port, a few times.
        for attempt in 1..=5 {
            match p.spawn_and_wait() {
                Ok(()) => return Ok(p),
                Err(_) if attempt < 5 && p.port_was_taken() => {
                    let port = util::free_port();
                    let listen = format!("--web.listen-address=127.0.0.1:{port}");
                    for a in p.args.iter_mut().filter(|a| a.starts_with("--web.listen-address=")) {
                        a.clone_from(&listen);
                    }
                    p.port = port;
                }
                Err(e) => {
                    util::print_log_tail("prometheus", &p.log_path());
                    return Err(e);
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    fn port_was_taken(&self) -> bool {
        std::fs::read_to_string(self.log_path()).is_ok_and(|l| l.contains("address already in use"))
    }

    fn spawn_and_wait(&mut self) -> Result<()> {
        let mut cmd = Command::new("prometheus");
        cmd.args(&self.args).current_dir(self.dir.path());
        self.child = Some(util::spawn_logged(&mut cmd, &self.log_path())?);
        let ready = try_wait_until(START_TIMEOUT, Duration::from_millis(100), || {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Some(Err(anyhow::anyhow!("prometheus exited early: {st}")));
            }
            self.is_ready().then_some(Ok(()))
        });
        match ready {
            Some(r) => r?,
            None => bail!("not ready within {START_TIMEOUT:?}"),
        }
        for q in self.wait_for.clone() {
            let ok = try_wait_until(START_TIMEOUT, Duration::from_millis(200), || {
                self.query(&q).ok().filter(|r| !r.is_empty())
            });
            if ok.is_none() {
                bail!("query {q:?} returned no data within {START_TIMEOUT:?}");
            }
        }
        Ok(())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.log")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `GET /-/ready` is 200.
    pub fn is_ready(&self) -> bool {
        self.http
            .get(format!("{}/-/ready", self.url()))
            .timeout(Duration::from_secs(2))
            .send()
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    }

    /// Kill Prometheus (port and data are kept for [`Prometheus::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            util::terminate(&mut c, Duration::from_secs(10));
        }
    }

    /// Start again on the same port and data directory, and wait as in `start`.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn_and_wait() {
            util::print_log_tail("prometheus", &self.log_path());
            panic!("prometheus did not restart: {e:#}");
        }
    }

    fn api(&self, path: &str, params: &[(&str, String)]) -> Result<Value> {
        let resp = self
            .http
            .get(format!("{}{}", self.url(), path))
            .query(params)
            .send()
            .with_context(|| format!("GET {path}"))?;
        let st = resp.status();
        let body: Value = resp.json().with_context(|| format!("{path}: non-JSON"))?;
        if !st.is_success() || body["status"] != "success" {
            bail!("{path} -> {st}: {body}");
        }
        Ok(body["data"].clone())
    }

    /// Instant query at now: `data.result` (vector/matrix items, or `[ts, "v"]` for scalars).
    pub fn query(&self, promql: &str) -> Result<Vec<Value>> {
        let data = self.api("/api/v1/query", &[("query", promql.to_owned())])?;
        Ok(match &data["result"] {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        })
    }

    /// The first sample value of an instant query, parsed as f64.
    pub fn query_value(&self, promql: &str) -> Option<f64> {
        let r = self.query(promql).ok()?;
        r.first()?["value"][1].as_str()?.parse().ok()
    }

    /// `query_range` → `data.result` (one item per series, each with `values`).
    pub fn query_range(&self, promql: &str, start: f64, end: f64, step: &str) -> Result<Vec<Value>> {
        let data = self.api(
            "/api/v1/query_range",
            &[
                ("query", promql.to_owned()),
                ("start", format!("{start}")),
                ("end", format!("{end}")),
                ("step", step.to_owned()),
            ],
        )?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            util::print_log_tail("prometheus", &self.log_path());
        }
        self.stop();
    }
}

fn config_yaml(opts: &PromOpts) -> String {
    let secs = opts.scrape_interval.as_secs().max(1);
    let mut y = format!(
        "global:\n  scrape_interval: {secs}s\n  scrape_timeout: {secs}s\n  evaluation_interval: {secs}s\nscrape_configs:\n"
    );
    if opts.scrape_targets.is_empty() && opts.host_targets.is_empty() {
        y.push_str("  []\n");
    }
    if !opts.host_targets.is_empty() {
        let targets: Vec<String> = opts.host_targets.iter().map(|t| format!("\"{t}\"")).collect();
        let _ = write!(
            y,
            "  - job_name: nthlayer-host\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
    }
    if !opts.scrape_targets.is_empty() {
        let targets: Vec<String> = opts.scrape_targets.iter().map(|t| format!("\"{t}\"")).collect();
        let _ = write!(
            y,
            "  - job_name: exporter\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
    }
    y
}

fn blocks_cache_root() -> PathBuf {
    util::workspace_root().join("target/nthlayer-tests/blocks")
}

/// Run promtool (or reuse cached blocks for identical text) and copy the blocks into `data`.
fn backfill(h: &History, data: &Path) -> Result<()> {
    let text = h.to_openmetrics();
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    let key = format!("{:016x}", hasher.finish());
    let root = blocks_cache_root();
    std::fs::create_dir_all(&root)?;
    prune_cache(&root);
    let cached = root.join(&key);
    if !cached.join(".complete").exists() {
        let tmp = tempfile::Builder::new().prefix(&format!(".{key}-")).tempdir_in(&root)?;
        let om = tmp.path().join("history.om");
        std::fs::write(&om, &text)?;
        let blocks = tmp.path().join("blocks");
        std::fs::create_dir_all(&blocks)?;
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&om)
            .arg(&blocks)
            .output()
            .context("run promtool (is the Debian prometheus package installed?)")?;
        if !out.status.success() {
            bail!(
                "promtool failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::write(blocks.join(".complete"), b"")?;
        // Another process may have won the race; either copy is fine.
        let _ = std::fs::rename(&blocks, &cached);
    }
    copy_dir(&cached, data)
}

fn prune_cache(root: &Path) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    let now = SystemTime::now();
    for e in rd.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > Duration::from_secs(6 * 3600));
        if old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        if name == ".complete" {
            continue;
        }
        let dst = to.join(&name);
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dst)?;
        } else {
            std::fs::copy(e.path(), &dst)?;
        }
    }
    Ok(())
}
