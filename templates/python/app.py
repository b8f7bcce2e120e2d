"""The component's glue, the same in every project (examples link this file): the WIT
exports `describe` and `run-cycle`, and module.Host on the WIT imports. Everything a project
writes is module.py: NAME, what it declares (VERSION, TASKS, NEEDS, EMITS), Host, HostError
and run(host, task, state, args)."""

import json
import os
import time

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports import core, log, prometheus, types

import module

LEVELS = {"trace": log.Level.TRACE, "debug": log.Level.DEBUG, "info": log.Level.INFO,
          "warn": log.Level.WARN, "error": log.Level.ERROR}
RECORDS = {"assessment": types.RecordKind.ASSESSMENT, "verdict": types.RecordKind.VERDICT}


def text(e):
    """A WIT host-error as "<variant>: <text>" (the Rust SDK's wording)."""
    if isinstance(e, types.HostError_Rejected):
        return f"rejected: {e.value.status} {e.value.code}"
    return f"{type(e).__name__.removeprefix('HostError_').lower()}: {e.value}"


def dumps(value):
    # Without NaN: JSON has no NaN, and core would refuse it.
    return json.dumps(value, allow_nan=False)


def call(f, *args):
    """An import's value, or module.HostError with the host's reason."""
    try:
        return f(*args)
    except Err as e:
        raise module.HostError(text(e.value))


class WasmHost(module.Host):
    def get_manifests(self):
        return json.loads(call(core.get_manifests))

    def prom_query(self, promql):
        return json.loads(call(prometheus.query, promql, None))

    def prom_query_batch(self, queries, at):
        return [json.loads(r.value) if isinstance(r, Ok) else module.HostError(text(r.value))
                for r in prometheus.query_batch(queries, at)]

    def submit_assessment(self, record):
        return call(core.submit_assessment, dumps(record), None)

    def log(self, level, message, fields):
        log.log(LEVELS[level], message, list(fields))

    def now(self):
        return time.time()

    def hex8(self):
        return os.urandom(4).hex()


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.ModuleInfo:
        tasks = [types.Task(name=name, interval_seconds=interval, summary=summary, wake=[])
                 for name, interval, summary in module.TASKS]
        # "assessment:KIND" / "verdict:TYPE": every record kind run() submits; the host
        # refuses any other, and the operator still has to grant them.
        emits = [types.Emission(record=RECORDS[record], kind=kind)
                 for record, kind in (e.split(":", 1) for e in module.EMITS)]
        return types.ModuleInfo(name=module.NAME, version=module.VERSION, tasks=tasks, needs=list(module.NEEDS),
                                emits=emits)

    def run_cycle(self, input: types.CycleInput) -> types.CycleOutput:
        state = json.loads(input.state) if input.state is not None else None
        args = json.loads(input.args) if input.args is not None else None
        try:
            new_state, emitted = module.run(WasmHost(), input.task, state, args)
        except (ValueError, module.HostError) as e:
            raise Err(str(e))
        return types.CycleOutput(state=dumps(new_state), result=None, emitted=emitted)
