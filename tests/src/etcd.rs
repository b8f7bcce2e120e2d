//! Real etcd (Debian's `etcd-server`, `/usr/bin/etcd`) on loopback: a cluster of 1 or 3
//! members with throw-away data directories, each member killable and restartable, for the
//! HA suites. Members are SIGKILLed on Drop.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use tempfile::TempDir;

use crate::util;
use crate::wait::{try_wait_until, wait_for};

/// `$NTHLAYER_ETCD_BIN`, else `etcd` on PATH.
pub fn etcd_bin() -> PathBuf {
    std::env::var_os("NTHLAYER_ETCD_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("etcd"))
}

struct Member {
    name: String,
    client: u16,
    child: Option<Child>,
}

pub struct EtcdCluster {
    members: Vec<Member>,
    initial: String,
    peers: Vec<u16>,
    token: String,
    dir: TempDir,
}

impl EtcdCluster {
    /// `n` members, started and with a leader elected.
    pub fn start(n: usize) -> EtcdCluster {
        let dir = tempfile::Builder::new().prefix("etcd-").tempdir().expect("tempdir");
        let peers: Vec<u16> = (0..n).map(|_| util::free_port()).collect();
        let initial =
            peers.iter().enumerate().map(|(i, p)| format!("m{i}=http://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
        let token = format!("nthlayer-test-{}", std::process::id());
        let members =
            (0..n).map(|i| Member { name: format!("m{i}"), client: util::free_port(), child: None }).collect();
        let mut c = EtcdCluster { members, initial, peers, token, dir };
        for i in 0..n {
            c.spawn(i);
        }
        c.wait_healthy();
        c
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let client = format!("http://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", self.peers[i]);
        let data = self.dir.path().join(&m.name);
        let mut cmd = Command::new(etcd_bin());
        cmd.args(["--name", &m.name, "--data-dir"])
            .arg(&data)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial, "--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", "new", "--heartbeat-interval", "100", "--election-timeout", "1000"]);
        let log = self.log_path(i);
        let child = util::spawn_logged(&mut cmd, &log)
            .unwrap_or_else(|e| panic!("spawn {}: {e:#} (install etcd-server: scripts/setup)", etcd_bin().display()));
        self.members[i].child = Some(child);
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.members[i].name))
    }

    /// `http://127.0.0.1:C1,http://127.0.0.1:C2,…`: what `--ha-etcd` takes.
    pub fn endpoints(&self) -> String {
        self.members.iter().map(|m| format!("http://127.0.0.1:{}", m.client)).collect::<Vec<_>>().join(",")
    }

    /// One member's client URL.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client)
    }

    /// Whether member `i` answers `/health` with a leader.
    pub fn healthy(&self, i: usize) -> bool {
        let url = format!("{}/health", self.endpoint(i));
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).no_proxy().build();
        let Ok(r) = client.expect("client").get(url).send() else { return false };
        r.json::<serde_json::Value>().is_ok_and(|v| v["health"] == "true")
    }

    /// Waits until every running member reports a leader.
    pub fn wait_healthy(&self) {
        let running: Vec<usize> = (0..self.members.len()).filter(|i| self.members[*i].child.is_some()).collect();
        let ok = try_wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            running.iter().all(|i| self.healthy(*i)).then_some(())
        });
        if ok.is_none() {
            for i in running {
                util::print_log_tail(&self.members[i].name, &self.log_path(i));
            }
            panic!("etcd members did not become healthy within 30 s");
        }
    }

    /// SIGKILLs member `i` (its data stays, for [`EtcdCluster::restart`]).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data directory.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].child.is_none(), "member {i} is running");
        self.spawn(i);
    }

    /// Waits until member `i` reports that it has no leader (quorum lost).
    pub fn wait_no_quorum(&self, i: usize) {
        wait_for("an etcd member without a leader", Duration::from_secs(30), || !self.healthy(i));
    }

    /// Member `i`'s `/metrics` value of `name` (first sample, no labels), if any.
    pub fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let text = util::http_client().get(format!("{}/metrics", self.endpoint(i))).send().ok()?.text().ok()?;
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            if std::thread::panicking() && self.members[i].child.is_some() {
                util::print_log_tail(&self.members[i].name, &self.log_path(i));
            }
            self.kill(i);
        }
    }
}
