// The wasm glue, the same for every module made from this template: adapts the contract's
// imports to src/host.ts's Host and exports describe / run-cycle around src/module.ts.
// Import specifiers carry no contract version; build.mjs appends the version of the WIT
// folder the component is built against, so this file does not change with it.
import { getManifests, submitAssessment } from "nthlayer:worker/core";
import { queryBatch } from "nthlayer:worker/prometheus";
import { log } from "nthlayer:worker/log";
import type { CycleInput, CycleOutput, HostError, ModuleInfo } from "nthlayer:worker/types";
import { Host, HostFailure } from "./host.js";
import { TASK, run } from "./module.js";

// From package.json, by build.mjs (esbuild `define`): one place for the name and version.
declare const __MODULE_NAME__: string;
declare const __MODULE_VERSION__: string;
const NAME = __MODULE_NAME__;

/** Imports that return result<_, host-error> throw; jco puts the variant in `payload`. */
function failure(what: string, e: unknown): HostFailure {
  const err = ((e as { payload?: HostError })?.payload ?? e) as HostError;
  if (err && typeof err === "object" && "tag" in err) {
    if (err.tag === "rejected") {
      return new HostFailure(what, "rejected", err.val.status, `${err.val.code} ${err.val.detail}`);
    }
    return new HostFailure(what, err.tag, null, String(err.val));
  }
  return new HostFailure(what, "trap", null, String(e));
}

function call<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw failure(what, e);
  }
}

const host: Host = {
  manifests: () => JSON.parse(call("core.get-manifests", getManifests)),
  queryBatch: (promql, at) =>
    queryBatch(promql, at).map((r) =>
      r.tag === "ok"
        ? { ok: true, data: JSON.parse(r.val) }
        : { ok: false, error: failure("prometheus.query-batch", { payload: r.val }).message },
    ),
  submit: (record) => call("core.submit-assessment", () => submitAssessment(JSON.stringify(record), undefined)),
  log: (level, message, fields = {}) => log(level, message, Object.entries(fields)),
  nowMs: () => Date.now(),
};

export function describe(): ModuleInfo {
  return {
    name: NAME,
    version: __MODULE_VERSION__,
    tasks: [{ name: NAME, intervalSeconds: TASK.intervalSeconds, summary: TASK.summary, wake: [] }],
    needs: TASK.needs,
    emits: TASK.emits,
  };
}

export function runCycle(input: CycleInput): CycleOutput {
  const out = run(host, input.state, input.config, NAME);
  return { state: JSON.stringify(out.state), result: JSON.stringify(out.result), emitted: out.emitted };
}
