"""Generated scale for scripts/bench-scale: N services x 3 SLOs as core manifests, the
exporter text Prometheus scrapes, and the drift history promtool backfills.

Everything is derived from the service index, so two runs with the same N produce the same
files, and ~30 % of SLOs are unhealthy. Files are written one by one (manifests) or streamed
(history), so 10,000 services never hold the whole history in memory.
"""
import os, subprocess

SLI_METRIC = "test_sli"
BUDGET_METRIC = "slo:error_budget_remaining:ratio"
HISTORY_DAYS = 30
# One sample every 6 h keeps 10,000 services' history at ~1.2 M samples (promtool: ~1 min);
# Prometheus' lookback is raised to the step so every 1 h step of drift's range query finds one.
HISTORY_STEP = 6 * 3600
HISTORY_GAP = 3 * 3600  # strictly older than Prometheus' head (tests/src/prometheus.rs)
AI_GATE_EVERY = 10  # every 10th service is an ai-gate with a judgment SLO (measure's work)


def name(i):
    return f"svc-{i:05d}"


def slos(i):
    """(slo name, target, window, judgment) of service i: always three."""
    third = ("reversal_rate", 98.5, "7d", True) if i % AI_GATE_EVERY == 0 else ("errors", 99.0, "30d", False)
    return [("availability", 99.9, "30d", False), ("latency", 99.0, "7d", False), third]


def unhealthy(i, k):
    """~30 % of SLOs, spread over services (a multiplicative hash of the SLO's index)."""
    return ((i * 3 + k) * 2654435761) % 100 < 30


def sli(i, k, target):
    """A healthy SLI sits well inside its target; an unhealthy one burns its budget 3x over."""
    miss = 1 - target / 100
    return round(1 - miss * (0.2 if not unhealthy(i, k) else 3.0), 9)


def deps(i, n):
    return [name((i + 1) % n), name((i + 7) % n)] if n > 1 else []


def manifest(i, n):
    svc = name(i)
    kind = "ai-gate" if i % AI_GATE_EVERY == 0 else "api"
    tier = "critical" if i % 5 == 0 else "standard"
    out = [f"apiVersion: srm/v1\nkind: ServiceReliabilityManifest\nmetadata:\n  name: {svc}\n  team: team-{i % 40:02d}\n"
           f"  tier: {tier}\nspec:\n  type: {kind}\n  slos:\n"]
    for k, (slo, target, window, judgment) in enumerate(slos(i)):
        # Judgment SLOs are sent verbatim by measure: the service is literal there.
        label = svc if judgment else ("${service}" if k == 1 else "$service")
        ind = "" if judgment else f"        type: {slo if slo != 'errors' else 'availability'}\n"
        out.append(f"    {slo}:\n      target: {target}\n      window: {window}\n      indicator:\n{ind}"
                   f"        query: {SLI_METRIC}{{service=\"{label}\",slo=\"{slo}\"}}\n")
    out.append("  dependencies:\n")
    for d in deps(i, n):
        out.append(f"    - name: {d}\n      type: api\n      critical: {'true' if i % 2 else 'false'}\n")
    return "".join(out)


def write_manifests(n, d):
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        with open(os.path.join(d, f"{name(i)}.yaml"), "w") as f:
            f.write(manifest(i, n))


def exporter_text(n):
    """Every SLI, and two call edges per service (observe.topology's first family)."""
    lines = [f"# TYPE {SLI_METRIC} gauge\n"]
    for i in range(n):
        for k, (slo, target, _, _) in enumerate(slos(i)):
            lines.append(f'{SLI_METRIC}{{service="{name(i)}",slo="{slo}"}} {sli(i, k, target)}\n')
    lines.append("# TYPE http_client_requests_total counter\n")
    for i in range(n):
        for d in deps(i, n):
            lines.append(f'http_client_requests_total{{service="{name(i)}",target_service="{d}"}} 1234\n')
    return "".join(lines).encode()


def history_range(now):
    end = int(now) // 3600 * 3600 - HISTORY_GAP
    return end - HISTORY_DAYS * 86400, end


def write_history(n, path, now):
    """OpenMetrics for promtool: each service's availability budget over 30 days, falling
    for services whose availability is unhealthy, flat otherwise. Streamed line by line."""
    start, end = history_range(now)
    span = end - start
    with open(path, "w", buffering=1 << 20) as f:
        f.write(f"# TYPE {BUDGET_METRIC} gauge\n")
        for i in range(n):
            labels = f'{{service="{name(i)}",slo="availability"}}'
            falling = unhealthy(i, 0)
            for t in range(start, end + 1, HISTORY_STEP):
                v = 0.9 - 0.5 * (t - start) / span if falling else 0.95
                f.write(f"{BUDGET_METRIC}{labels} {v:.6f} {t}\n")
        f.write("# EOF\n")


def blocks(n, cache_root, now):
    """promtool blocks for n services, cached per (n, hour): a rerun within the hour reuses them."""
    start, end = history_range(now)
    d = os.path.join(cache_root, f"scale-{n}-{end}")
    if os.path.exists(os.path.join(d, ".complete")):
        return d
    os.makedirs(d, exist_ok=True)
    om = os.path.join(d, "history.om")
    write_history(n, om, now)
    out = os.path.join(d, "blocks")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", om, out], check=True,
                   stdout=subprocess.DEVNULL)
    os.remove(om)
    open(os.path.join(d, ".complete"), "w").close()
    return d


def expected_counts(n):
    """What one cycle of each task submits at n services."""
    judgment = sum(1 for i in range(n) if i % AI_GATE_EVERY == 0)
    return {"observe.collect": 3 * n + 1, "observe.drift": n, "observe.topology": n, "measure": judgment,
            "unhealthy_slos": sum(unhealthy(i, k) for i in range(n) for k in range(3))}
