"""burn-rate-python: one `burn_rate` assessment per SLO of every manifest in core, from the
SRE workbook's multi-window multi-burn-rate rules.

The module logic, free of WIT types: `run(host, task, state, args)` takes any object with
the methods of `Host` below, so it is unit-tested with plain CPython (test_module.py);
app.py, the Python template's glue (linked), adapts the component's imports to it and
builds `describe()` from the declarations below. examples/burn-rate-rust implements the same
arithmetic in the same order: the two must produce identical records on the same data.
"""

import datetime
import json
import math

NAME = "burn-rate-python"
VERSION = "0.1.0"
# (task, interval seconds, summary)
TASKS = [(NAME, 60, "burn_rate per SLO: SRE-workbook multi-window multi-burn-rate alerts")]
NEEDS = ["core", "prometheus"]
# The one kind run() submits; the operator grants it (--grant …=assessment:burn_rate).
EMITS = ["assessment:burn_rate"]

# Every window a rule reads, with the resolution of its subquery.
WINDOWS = [("5m", "1m"), ("30m", "1m"), ("1h", "1m"), ("2h", "1m"), ("6h", "5m"), ("1d", "15m"), ("3d", "30m")]

# (severity, long window, short window, factor): page on 14.4x over 1h and 5m, or 6x over
# 6h and 30m; ticket on 3x over 1d and 2h, or 1x over 3d and 6h.
RULES = [
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "1d", "2h", 3.0),
    ("ticket", "3d", "6h", 1.0),
]


class HostError(Exception):
    """A host call that did not produce a value; `text` reads like "unavailable: …"."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text


class Host:
    """What the module needs from outside the sandbox (app.py implements it on the WIT imports)."""

    def get_manifests(self):  # -> list (parsed JSON); raises HostError
        raise NotImplementedError

    def prom_query_batch(self, queries, at):  # -> list of (data dict | HostError)
        raise NotImplementedError

    def submit_assessment(self, record):  # -> id; raises HostError
        raise NotImplementedError

    def log(self, level, message, fields):
        raise NotImplementedError

    def now(self):  # Unix seconds
        raise NotImplementedError

    def hex8(self):  # 8 lowercase hex digits of randomness
        raise NotImplementedError


def window_query(indicator, window, step):
    return f"avg_over_time(({indicator})[{window}:{step}])"


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def evaluate(slo_name, objective, window, at, slis):
    """The record's `data` for an SLO whose windows averaged `slis` (WINDOWS order; None = no data)."""
    data = {"slo_name": slo_name, "objective": objective, "window": window, "evaluated_at": at}
    target = float(objective) if is_number(objective) else math.nan
    budget = (100.0 - target) / 100.0
    if not budget > 0.0:
        data["status"] = "ERROR"
        data["error"] = "objective leaves no error budget"
        return data
    data["error_budget"] = budget
    burns = [None if s is None else (1.0 - s) / budget for s in slis]
    by_window = {name: b for (name, _), b in zip(WINDOWS, burns)}
    data["burn_rates"] = dict(by_window)
    firing = [
        r for r in RULES
        if by_window[r[1]] is not None and by_window[r[2]] is not None
        and by_window[r[1]] > r[3] and by_window[r[2]] > r[3]
    ]
    if any(r[0] == "page" for r in firing):
        severity = "page"
    elif not firing:
        severity = "none"
    else:
        severity = "ticket"
    data["firing"] = [{"severity": s, "long_window": l, "short_window": w, "factor": f} for s, l, w, f in firing]
    data["severity"] = severity
    if all(b is None for b in burns):
        status = "NO_DATA"
    else:
        status = {"page": "PAGE", "ticket": "TICKET"}.get(severity, "OK")
    data["status"] = status
    return data


def slos(manifests):
    """(service, name, objective, window, indicator|None) for SLOs with a name and a numeric target."""
    out = []
    for m in manifests if isinstance(manifests, list) else []:
        service = m.get("name") if isinstance(m, dict) else None
        if not isinstance(service, str) or not service:
            continue
        raw = m.get("slos")
        for s in raw if isinstance(raw, list) else []:
            name = s.get("name") if isinstance(s, dict) else None
            if not isinstance(name, str) or not name or not is_number(s.get("target")):
                continue

            def text(k):
                v = s.get(k)
                return v if isinstance(v, str) and v else None

            indicator = text("indicator_query")
            if indicator is None and text("good_query") and text("total_query"):
                indicator = f"({text('good_query')}) / ({text('total_query')})"
            if indicator is not None:
                indicator = indicator.replace("${service}", service).replace("$service", service)
            window = s["window"] if "window" in s else "30d"
            out.append((service, name, s["target"], window, indicator))
    return out


def sample(data):
    """The first sample of an instant vector; NaN, infinities and empty results are no data."""
    try:
        v = data["result"][0]["value"][1]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(v, str):
        return None
    try:
        x = float(v)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def evaluate_slo(host, indicator, name, objective, window, at):
    if indicator is None:
        data = evaluate(name, objective, window, at, [None] * len(WINDOWS))
        data["error"] = "No query defined"
        return data
    queries = [window_query(indicator, w, step) for w, step in WINDOWS]
    first_error = None
    slis = []
    for answer in host.prom_query_batch(queries, float(at)):
        if isinstance(answer, HostError):
            first_error = first_error or answer.text
            slis.append(None)
        else:
            slis.append(sample(answer))
    data = evaluate(name, objective, window, at, slis)
    if first_error is not None:
        data["status"] = "ERROR"
        data["error"] = first_error
    return data


def iso(unix_seconds):
    """YYYY-MM-DDTHH:MM:SS.ffffff+00:00, as core writes timestamps."""
    dt = datetime.datetime.fromtimestamp(unix_seconds, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def run(host, task, state, args):
    """One cycle; returns (new state, emitted)."""
    if task != NAME:
        raise ValueError(f"unknown task {task!r} for module {NAME}")
    seq = state.get("seq") if isinstance(state, dict) else None
    seq = max(seq, 1) if isinstance(seq, int) and not isinstance(seq, bool) else 1
    # The last full minute, so re-runs and replicas within a minute see the same windows;
    # {"at": <unix seconds>} evaluates another moment (a backtest).
    at_arg = args.get("at") if isinstance(args, dict) else None
    now = float(at_arg) if is_number(at_arg) else host.now()
    at = int(math.floor(now / 60.0) * 60.0)
    try:
        manifests = host.get_manifests()
    except HostError as e:
        host.log("warn", "burn_rate_manifests_failed", [("error", e.text)])
        return {"seq": seq}, 0
    emitted = 0
    for service, name, objective, window, indicator in slos(manifests):
        data = evaluate_slo(host, indicator, name, objective, window, at)
        now = host.now()
        record = {
            "id": f"asm-{iso(now)[:10]}-{host.hex8()}-{seq:05d}",
            "created_at": iso(now),
            "kind": "burn_rate",
            "service": service,
            "producer": "nthlayer-" + NAME,
            "data": data,
        }
        seq += 1
        try:
            host.submit_assessment(record)
            emitted += 1
        except HostError as e:
            host.log("warn", "burn_rate_submit_failed", [("service", service), ("slo", name), ("error", e.text)])
    return {"seq": seq}, emitted
