"""The processes of scripts/bench-scale and what is read from them: a real nthlayer-core per
worker, one real Prometheus scraping the generated exporter, and /proc sampling (CPU of each
process, context switches of every host thread, peak RSS)."""
import json, os, shutil, signal, socket, subprocess, tempfile, threading, time, urllib.parse, urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def wait(what, f, timeout, every=0.5):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            v = f()
            if v:
                return v
        except Exception:
            pass
        time.sleep(every)
    raise SystemExit(f"bench-scale: {what} not ready within {timeout} s")


def stop(proc, grace=20):
    if proc.poll() is None:  # (a second stop of the same process is a no-op)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Exporter:
    """Serves one fixed exposition text on /metrics (the SLIs and call edges)."""
    def __init__(self, body):
        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class Prometheus:
    def __init__(self, target, blocks_dir, series, scrape_s, lookback):
        self.dir = tempfile.mkdtemp(prefix="nthlayer-scale-prom-")
        data = os.path.join(self.dir, "data")
        shutil.copytree(os.path.join(blocks_dir, "blocks"), data) if blocks_dir else os.makedirs(data)
        cfg = os.path.join(self.dir, "prometheus.yml")
        open(cfg, "w").write(f"global:\n  scrape_interval: {scrape_s}s\n  scrape_timeout: {scrape_s}s\n"
                             f"scrape_configs:\n  - job_name: exporter\n    static_configs:\n"
                             f"      - targets: [\"{target}\"]\n")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                                      f"--web.listen-address={self.url[7:]}", "--storage.tsdb.retention.time=90d",
                                      f"--query.lookback-delta={lookback}"], cwd=self.dir,
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "w"))
        q = urllib.parse.quote("count(test_sli)")
        wait("prometheus scrape", lambda: int(get(f"{self.url}/api/v1/query?query={q}")["data"]["result"][0]["value"][1])
             == series, 180)

    def close(self):
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Core:
    def __init__(self, venv, manifests):
        self.dir = tempfile.mkdtemp(prefix="nthlayer-scale-core-")
        self.url = f"http://127.0.0.1:{free_port()}"
        env = dict(os.environ, NTHLAYER_STORE_PATH=os.path.join(self.dir, "nthlayer.db"), PYTHONUNBUFFERED="1",
                   NTHLAYER_MANIFESTS_DIR=manifests)
        self.proc = subprocess.Popen([os.path.join(venv, "bin/nthlayer-core"), "serve", "--host", "127.0.0.1", "--port",
                                      self.url.rsplit(":", 1)[1]], env=env, cwd=self.dir,
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "w"))
        wait("core", lambda: get(f"{self.url}/health"), 120)

    def portfolios(self, limit=1000):
        return get(f"{self.url}/assessments?kind=portfolio_status&limit={limit}")

    def close(self):
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def proc_cpu(pid):
    """utime + stime of pid and its live children, in seconds."""
    total = 0.0
    for p in [pid] + children(pid):
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / TICK
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def ctx_switches(pid):
    """(voluntary, nonvoluntary) summed over every thread of pid."""
    vol = non = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0, 0
    for t in tids:
        try:
            for line in open(f"/proc/{pid}/task/{t}/status"):
                if line.startswith("voluntary_ctxt_switches"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    non += int(line.split()[1])
        except FileNotFoundError:
            pass
    return vol, non


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)


class Sampler:
    """Every `every` seconds: CPU of each named pid, and context switches of the `switches` pid."""
    def __init__(self, pids, switches=(), every=1.0):
        self.pids, self.switches, self.every, self.rows = pids, switches, every, []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            row = {"t": time.time()}
            for k, pid in list(self.pids.items()):  # the bench adds pids while this runs
                row[k] = proc_cpu(pid)
            for k in list(self.switches):
                row[f"{k}_ctx"] = ctx_switches(self.pids[k])
            self.rows.append(row)
            self.done.wait(self.every)

    def close(self):
        self.done.set()
        self.thread.join()

    def at(self, key, t):
        """key's value at time t, interpolated between samples (a tuple is interpolated per item)."""
        rows = [r for r in self.rows if key in r]  # a pid added later has no earlier samples
        for a, b in zip(rows, rows[1:]):
            if a["t"] <= t <= b["t"]:
                w = (t - a["t"]) / (b["t"] - a["t"])
                if isinstance(a[key], tuple):
                    return tuple(x + (y - x) * w for x, y in zip(a[key], b[key]))
                return a[key] + (b[key] - a[key]) * w
        return rows[0][key] if t < rows[0]["t"] else rows[-1][key]

    def between(self, key, t0, t1):
        a, b = self.at(key, t0), self.at(key, t1)
        return tuple(y - x for x, y in zip(a, b)) if isinstance(a, tuple) else b - a


def iso_ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def host_events(path):
    """The host's JSON log: (cycles: task -> [(start, end, ms, cpu_ms, emitted)], failures, warnings)."""
    cycles, failed, warns = {}, [], {}
    for line in open(path, errors="replace"):
        if not line.startswith("{"):
            continue
        e = json.loads(line)
        f = e.get("fields", {})
        m = f.get("message", "")
        if m == "cycle ok":
            end = iso_ts(e["timestamp"])
            cycles.setdefault(f["task"], []).append((end - f["ms"] / 1000, end, f["ms"], f.get("cpu_ms"), f.get("emitted")))
        elif e.get("level") == "ERROR":
            failed.append(f"{e['timestamp'][11:19]} {f.get('task', '')}: {m} {f.get('error', '')}".strip())
            if f.get("task"):
                cycles.setdefault(f"{f['task']} (failed)", []).append((iso_ts(e["timestamp"]),) * 2 + (None,) * 3)
        elif e.get("level") == "WARN":
            warns[m] = warns.get(m, 0) + 1
    return cycles, failed, warns


def reference_cycles(core):
    """The reference's collect cycles as its portfolio_status creation times (a cycle's last record)."""
    return sorted(iso_ts(a["created_at"]) for a in core.portfolios())
