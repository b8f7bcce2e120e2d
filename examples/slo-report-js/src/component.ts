// The wasm glue: adapts the contract's imports to report.ts's Host and exports describe /
// run-cycle. Import specifiers carry no contract version; build.mjs appends the version of
// the WIT folder the component is built against, so this file never changes with it.
import { getManifests, submitAssessment } from "nthlayer:worker/core";
import { queryBatch } from "nthlayer:worker/prometheus";
import { log } from "nthlayer:worker/log";
import type { CycleInput, CycleOutput, HostError, ModuleInfo } from "nthlayer:worker/types";
import { Host, HostFailure, parseConfig, parseState, runReport } from "./report.js";

// From package.json, by build.mjs (esbuild `define`): one place for the name and version.
declare const __MODULE_NAME__: string;
declare const __MODULE_VERSION__: string;
export const NAME = __MODULE_NAME__;

/** Imports that return result<_, host-error> throw; jco puts the variant in `payload`. */
function failure(e: unknown): HostFailure {
  const err = ((e as { payload?: HostError })?.payload ?? e) as HostError;
  if (err && typeof err === "object" && "tag" in err) {
    if (err.tag === "rejected") return new HostFailure("rejected", err.val.status, `${err.val.code} ${err.val.detail}`);
    return new HostFailure(err.tag, null, String(err.val));
  }
  return new HostFailure("unknown", null, String(e));
}

function call<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const f2 = failure(e);
    f2.message = `${what}: ${f2.message}`;
    throw f2;
  }
}

const host: Host = {
  manifests: () => JSON.parse(call("core.get-manifests", getManifests)),
  queryBatch: (promql, at) =>
    queryBatch(promql, at).map((r) =>
      r.tag === "ok" ? { ok: true, data: JSON.parse(r.val) } : { ok: false, error: failure({ payload: r.val }).message },
    ),
  submit: (record) => call("core.submit-assessment", () => submitAssessment(JSON.stringify(record), undefined)),
  log: (level, message, fields = {}) => log(level, message, Object.entries(fields)),
  nowMs: () => Date.now(),
};

export function describe(): ModuleInfo {
  return {
    name: NAME,
    version: __MODULE_VERSION__,
    tasks: [
      {
        name: NAME,
        intervalSeconds: 86400,
        summary: "daily SLO report per team: SLI vs target and remaining error budget",
        wake: [],
      },
    ],
    needs: ["core", "prometheus"],
  };
}

export function runCycle(input: CycleInput): CycleOutput {
  const out = runReport(host, parseState(input.state), parseConfig(input.config), NAME);
  return { state: JSON.stringify(out.state), result: JSON.stringify(out.result), emitted: out.emitted };
}
