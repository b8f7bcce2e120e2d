"""The component: the WIT exports `describe` and `run-cycle`, and {{name_snake}}.Host on the
WIT imports. The logic is {{name_snake}}.py."""

import json
import os
import time

import wit_world
from componentize_py_types import Err
from wit_world.imports import core, log, prometheus, types

import {{name_snake}} as module

LEVELS = {"debug": log.Level.DEBUG, "info": log.Level.INFO, "warn": log.Level.WARN, "error": log.Level.ERROR}


def text(e):
    """A WIT host-error as "<variant>: <text>"."""
    if isinstance(e, types.HostError_Rejected):
        return f"rejected: {e.value.status} {e.value.code}"
    return f"{type(e).__name__.removeprefix('HostError_').lower()}: {e.value}"


class WasmHost(module.Host):
    def get_manifests(self):
        try:
            return json.loads(core.get_manifests())
        except Err as e:
            raise module.HostError(text(e.value))

    def prom_query(self, promql):
        try:
            return json.loads(prometheus.query(promql, None))
        except Err as e:
            raise module.HostError(text(e.value))

    def submit_assessment(self, record):
        try:
            return core.submit_assessment(json.dumps(record, allow_nan=False), None)
        except Err as e:
            raise module.HostError(text(e.value))

    def log(self, level, message, fields):
        log.log(LEVELS[level], message, list(fields))

    def now(self):
        return time.time()

    def hex8(self):
        return os.urandom(4).hex()


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.ModuleInfo:
        task = types.Task(name=module.NAME, interval_seconds=300,
                          summary="slo_snapshot per service: current SLI against objective", wake=[])
        # Asking is not getting: the operator grants these
        # (--grant {{name}}=core,prometheus,assessment:slo_snapshot). `emits` lists every
        # record kind run() submits; the host refuses any other.
        emits = [types.Emission(record=types.RecordKind.ASSESSMENT, kind="slo_snapshot")]
        return types.ModuleInfo(name=module.NAME, version="0.1.0", tasks=[task], needs=["core", "prometheus"],
                                emits=emits)

    def run_cycle(self, input: types.CycleInput) -> types.CycleOutput:
        state = json.loads(input.state) if input.state is not None else None
        try:
            new_state, emitted = module.run(WasmHost(), input.task, state)
        except (ValueError, module.HostError) as e:
            raise Err(str(e))
        return types.CycleOutput(state=json.dumps(new_state), result=None, emitted=emitted)
