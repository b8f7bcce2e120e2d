"""{{name}}: one `slo_snapshot` assessment per service in core: each SLO's current SLI from
its indicator query, and whether it meets its objective.

The logic, free of WIT types: `run(host, task, state, args)` takes any object with the
methods of `Host`, so `python3 -m unittest` tests it with plain CPython; app.py (the glue,
the same in every project) adapts the component's imports to it and builds `describe()`
from the declarations below.
"""

import datetime

NAME = "{{name}}"
VERSION = "0.1.0"
# (task, interval seconds, summary)
TASKS = [(NAME, 300, "slo_snapshot per service: current SLI against objective")]
# Asking is not getting: the operator grants these
# (--grant {{name}}=core,prometheus,assessment:slo_snapshot).
NEEDS = ["core", "prometheus"]
# Every record kind run() submits; the host refuses any other.
EMITS = ["assessment:slo_snapshot"]


class HostError(Exception):
    """A host call that did not produce a value (denied, unavailable, timeout, …)."""


class Host:
    def get_manifests(self):  # -> list (parsed JSON); raises HostError
        raise NotImplementedError

    def prom_query(self, promql):  # -> the API's data dict; raises HostError
        raise NotImplementedError

    def submit_assessment(self, record):  # -> id; raises HostError
        raise NotImplementedError

    def log(self, level, message, fields):
        raise NotImplementedError

    def now(self):  # Unix seconds
        raise NotImplementedError

    def hex8(self):  # 8 lowercase hex digits of randomness
        raise NotImplementedError


def snapshot(host, service, slo):
    objective = slo.get("target")
    query = slo.get("indicator_query")
    sli = None
    if isinstance(query, str) and query:
        query = query.replace("${service}", service).replace("$service", service)
        try:
            sli = float(host.prom_query(query)["result"][0]["value"][1])
        except (HostError, KeyError, IndexError, TypeError, ValueError):
            sli = None
    meeting = None
    if sli is not None and isinstance(objective, (int, float)):
        meeting = sli * 100.0 >= objective
    return {"name": slo.get("name"), "objective": objective, "sli": sli, "meeting": meeting}


def iso(unix_seconds):
    return datetime.datetime.fromtimestamp(unix_seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def run(host, task, state, args=None):
    """One cycle; returns (new state, records emitted)."""
    if task != NAME:
        raise ValueError(f"unknown task {task!r}")
    seq = state.get("seq", 1) if isinstance(state, dict) else 1
    emitted = 0
    for m in host.get_manifests():
        service = m.get("name")
        if not isinstance(service, str):
            continue
        now = host.now()
        record = {
            "id": f"asm-{iso(now)[:10]}-{host.hex8()}-{seq:05d}",
            "created_at": iso(now),
            "kind": "slo_snapshot",
            "service": service,
            "producer": "nthlayer-" + NAME,
            "data": {"slos": [snapshot(host, service, s) for s in m.get("slos") or []]},
        }
        seq += 1
        try:
            host.submit_assessment(record)
            emitted += 1
        except HostError as e:
            host.log("warn", "submit failed", [("service", service), ("error", str(e))])
    return {"seq": seq}, emitted
