// The daily SLO report: one `slo_report` assessment per team, built from core's manifests
// and one batch of Prometheus instant queries. Pure logic on the Host interface
// (src/host.ts), unit-tested in Node (test/module.test.ts); src/component.ts is the glue.

import { Host, HostFailure, Manifest, QueryAnswer, firstValue, indicatorQuery, isoMicros } from "./host.js";

/** What src/component.ts's describe() says about the one task (named after the module). */
export const TASK = {
  intervalSeconds: 86400,
  summary: "daily SLO report per team: SLI vs target and remaining error budget",
  needs: ["core", "prometheus"],
  // The one record kind it submits (describe() emits); the operator grants it.
  emits: [{ record: "assessment" as const, kind: "slo_report" }],
};

/** One cycle, as src/component.ts calls it: JSON state/config in, new state out. */
export function run(host: Host, state: string | undefined, config: string | undefined, name: string) {
  return runReport(host, parseState(state), parseConfig(config), `nthlayer-${name}`);
}

export interface Config {
  /** The gauge holding each SLO's remaining error budget as a ratio (0..1). */
  budget_metric: string;
}

export interface State {
  seq: number;
}

export type SloStatus = "MET" | "MISSED" | "NO_DATA" | "NO_QUERY";

export interface SloLine {
  slo_name: string;
  target: number;
  window: string | null;
  /** Percent (0..100): ratios (<= 1) are scaled by 100, as observe reports current_sli. */
  current_sli: number | null;
  budget_remaining: number | null;
  /** current_sli - target, in percentage points. */
  margin: number | null;
  status: SloStatus;
  error?: string;
}

export const DEFAULT_CONFIG: Config = { budget_metric: "slo:error_budget_remaining:ratio" };

export function parseConfig(json: string | undefined): Config {
  const raw = json ? JSON.parse(json) : {};
  const c = { ...DEFAULT_CONFIG };
  if (typeof raw.budget_metric === "string" && raw.budget_metric !== "") c.budget_metric = raw.budget_metric;
  return c;
}

export function parseState(json: string | undefined): State {
  const raw = json ? JSON.parse(json) : {};
  return { seq: Number.isInteger(raw?.seq) && raw.seq > 0 ? raw.seq : 1 };
}

function quoteLabel(v: string): string {
  return JSON.stringify(v);
}

export function budgetQuery(metric: string, service: string, slo: string): string {
  return `last_over_time(${metric}{service=${quoteLabel(service)},slo=${quoteLabel(slo)}}[1d])`;
}

export function toPercent(v: number): number {
  return v <= 1 ? v * 100 : v;
}

interface Planned {
  team: string;
  service: string;
  tier: string;
  slo: NonNullable<Manifest["slos"]>[number];
  sli?: number;
  budget?: number;
}

export interface CycleResult {
  state: State;
  emitted: number;
  result: { report_date: string; teams: string[]; ids: string[] };
}

/** One cycle: read manifests, query every SLO's SLI and budget at once, submit per team. */
export function runReport(host: Host, state: State, config: Config, producer = "nthlayer-slo-report"): CycleResult {
  const now = host.nowMs();
  const at = Math.floor(now / 1000);
  const planned: Planned[] = [];
  const queries: string[] = [];
  const manifests = [...host.manifests()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const m of manifests) {
    for (const slo of m.slos ?? []) {
      const p: Planned = { team: m.team || "unowned", service: m.name, tier: m.tier || "standard", slo };
      if (slo.indicator_query) {
        p.sli = queries.push(indicatorQuery(slo.indicator_query, m.name)) - 1;
        p.budget = queries.push(budgetQuery(config.budget_metric, m.name, slo.name)) - 1;
      }
      planned.push(p);
    }
  }
  const answers = queries.length ? host.queryBatch(queries, at) : [];
  if (answers.length !== queries.length) {
    throw new Error(`prometheus answered ${answers.length} of ${queries.length} queries`);
  }

  const teams = new Map<string, Map<string, { tier: string; slos: SloLine[] }>>();
  for (const p of planned) {
    const services = teams.get(p.team) ?? new Map();
    teams.set(p.team, services);
    const svc = services.get(p.service) ?? { tier: p.tier, slos: [] };
    services.set(p.service, svc);
    svc.slos.push(sloLine(p, answers));
  }

  const day = isoMicros(now).slice(0, 10);
  const ids: string[] = [];
  const names = [...teams.keys()].sort();
  for (const team of names) {
    const record = teamRecord(team, teams.get(team)!, day, state.seq, now, producer);
    let id: string;
    try {
      id = host.submit(record);
    } catch (e) {
      // A retried cycle re-submits the ids it already stored; core says 409, which is success.
      if (e instanceof HostFailure && e.status === 409) id = record.id;
      else throw e;
    }
    ids.push(id);
    host.log("info", "slo report submitted", { team, id, status: record.data.status });
  }
  return { state: { seq: state.seq + 1 }, emitted: ids.length, result: { report_date: day, teams: names, ids } };
}

function sloLine(p: Planned, answers: QueryAnswer[]): SloLine {
  const line: SloLine = {
    slo_name: p.slo.name,
    target: p.slo.target,
    window: p.slo.window ?? null,
    current_sli: null,
    budget_remaining: null,
    margin: null,
    status: "NO_QUERY",
  };
  if (p.sli === undefined || p.budget === undefined) return line;
  const sliAnswer = answers[p.sli];
  const raw = firstValue(sliAnswer);
  line.budget_remaining = firstValue(answers[p.budget]);
  if (raw === null) {
    line.status = "NO_DATA";
    if (!sliAnswer.ok) line.error = sliAnswer.error;
    return line;
  }
  line.current_sli = toPercent(raw);
  line.margin = line.current_sli - p.slo.target;
  line.status = line.current_sli >= p.slo.target ? "MET" : "MISSED";
  return line;
}

function teamRecord(
  team: string,
  services: Map<string, { tier: string; slos: SloLine[] }>,
  day: string,
  seq: number,
  now: number,
  producer: string,
) {
  const lines = [...services.values()].flatMap((s) => s.slos);
  const count = (s: SloStatus) => lines.filter((l) => l.status === s).length;
  const met = count("MET");
  const missed = count("MISSED");
  let worst: { service: string; slo_name: string; margin: number } | null = null;
  for (const [service, s] of services) {
    for (const l of s.slos) {
      if (l.margin !== null && (worst === null || l.margin < worst.margin)) {
        worst = { service, slo_name: l.slo_name, margin: l.margin };
      }
    }
  }
  return {
    id: `rpt-${team}-${day.replaceAll("-", "")}-${String(seq).padStart(5, "0")}`,
    created_at: isoMicros(now),
    kind: "slo_report",
    service: `team:${team}`,
    producer,
    data: {
      team,
      report_date: day,
      status: missed > 0 ? "MISSED" : met > 0 ? "MET" : "NO_DATA",
      slo_count: lines.length,
      met_count: met,
      missed_count: missed,
      no_data_count: lines.length - met - missed,
      compliance_percent: met + missed > 0 ? (met / (met + missed)) * 100 : null,
      worst,
      services: [...services].map(([service, s]) => ({ service, tier: s.tier, slos: s.slos })),
    },
  };
}
