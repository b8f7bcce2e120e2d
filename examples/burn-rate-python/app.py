"""The component: WIT exports `describe` and `run-cycle`, and burn_rate.Host on the WIT
imports. Everything else is burn_rate.py."""

import json
import os

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports import core, log, prometheus, types

import burn_rate

LEVELS = {"trace": log.Level.TRACE, "debug": log.Level.DEBUG, "info": log.Level.INFO,
          "warn": log.Level.WARN, "error": log.Level.ERROR}


def describe_error(e):
    """A WIT host-error as "<variant>: <text>" (the Rust SDK's wording)."""
    if isinstance(e, types.HostError_Rejected):
        return f"rejected: {e.value.status} {e.value.code}"
    kind = type(e).__name__.removeprefix("HostError_").lower()
    return f"{kind}: {e.value}"


class WasmHost(burn_rate.Host):
    def get_manifests(self):
        try:
            return json.loads(core.get_manifests())
        except Err as e:
            raise burn_rate.HostError(describe_error(e.value))

    def prom_query_batch(self, queries, at):
        out = []
        for r in prometheus.query_batch(queries, at):
            if isinstance(r, Ok):
                out.append(json.loads(r.value))
            else:
                out.append(burn_rate.HostError(describe_error(r.value)))
        return out

    def submit_assessment(self, record):
        try:
            return core.submit_assessment(burn_rate.dumps(record), None)
        except Err as e:
            raise burn_rate.HostError(describe_error(e.value))

    def log(self, level, message, fields):
        log.log(LEVELS[level], message, list(fields))

    def now(self):
        import time
        return time.time()

    def hex8(self):
        return os.urandom(4).hex()


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.ModuleInfo:
        task = types.Task(
            name=burn_rate.NAME,
            interval_seconds=60,
            summary="burn_rate per SLO: SRE-workbook multi-window multi-burn-rate alerts",
            wake=[],
        )
        emits = [types.Emission(record=types.RecordKind.ASSESSMENT, kind="burn_rate")]
        return types.ModuleInfo(name=burn_rate.NAME, version="0.1.0", tasks=[task], needs=["core", "prometheus"],
                                emits=emits)

    def run_cycle(self, input: types.CycleInput) -> types.CycleOutput:
        state = json.loads(input.state) if input.state is not None else None
        args = json.loads(input.args) if input.args is not None else None
        try:
            new_state, emitted = burn_rate.run(WasmHost(), input.task, state, args)
        except ValueError as e:
            raise Err(str(e))
        return types.CycleOutput(state=burn_rate.dumps(new_state), result=None, emitted=emitted)
