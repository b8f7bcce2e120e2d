// {{name}}: one `slo_snapshot` assessment per service in core: each SLO's current SLI from
// its indicator query, and whether it meets its objective. Pure logic on the Host interface
// (src/host.ts), so `node --test` tests it with a fake host (test/module.test.ts);
// src/component.ts is the wasm glue and needs no change.

import { Host, HostFailure, firstValue, indicatorQuery, isoMicros } from "./host.js";

/** What describe() says about the module's one task (named after the module). */
export const TASK = {
  intervalSeconds: 300,
  summary: "SLI snapshot per service: each SLO's current SLI and whether it meets its objective",
  needs: ["core", "prometheus"],
  // Every record kind run() submits (describe() emits): the host refuses any other, and the
  // operator grants these (--grant {{name}}=core,prometheus,assessment:slo_snapshot).
  emits: [{ record: "assessment" as const, kind: "slo_snapshot" }],
};

export interface SloSnapshot {
  name: string;
  objective: number;
  sli: number | null;
  meeting: boolean | null;
}

/** One cycle: state is {"seq": n}, the next record number. Config is unused here. */
export function run(host: Host, state: string | undefined, _config: string | undefined, name: string) {
  const parsed = state ? JSON.parse(state) : {};
  let seq: number = Number.isInteger(parsed?.seq) && parsed.seq > 0 ? parsed.seq : 1;
  const now = host.nowMs();
  const manifests = host.manifests();
  // Every SLO with a query, across all services, in one host call.
  const slos = manifests.flatMap((m) => (m.slos ?? []).map((s) => ({ service: m.name, slo: s })));
  const withQuery = slos.filter((x) => x.slo.indicator_query);
  const answers = withQuery.length
    ? host.queryBatch(
        withQuery.map((x) => indicatorQuery(x.slo.indicator_query!, x.service)),
        Math.floor(now / 1000),
      )
    : [];
  const sli = new Map(withQuery.map((x, i) => [x, firstValue(answers[i])]));
  const ids: string[] = [];
  for (const m of manifests) {
    const snapshots: SloSnapshot[] = slos
      .filter((x) => x.service === m.name)
      .map((x) => {
        const v = sli.get(x) ?? null;
        return { name: x.slo.name, objective: x.slo.target, sli: v, meeting: v === null ? null : v * 100 >= x.slo.target };
      });
    const record = {
      id: `snap-${m.name}-${isoMicros(now).slice(0, 10).replaceAll("-", "")}-${String(seq).padStart(5, "0")}`,
      created_at: isoMicros(now),
      kind: "slo_snapshot",
      service: m.name,
      producer: `nthlayer-${name}`,
      data: { slos: snapshots },
    };
    try {
      ids.push(host.submit(record));
    } catch (e) {
      // A retried cycle re-submits what it already stored: core's 409 means stored.
      if (e instanceof HostFailure && e.status === 409) ids.push(record.id);
      else throw e;
    }
    seq += 1;
  }
  host.log("info", "snapshots submitted", { count: String(ids.length) });
  return { state: { seq }, result: { ids }, emitted: ids.length };
}
