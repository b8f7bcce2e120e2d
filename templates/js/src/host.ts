// The wasm-free side of the contract, shared by every module made from this template: the
// Host interface the module logic is written against (src/component.ts implements it on
// the WIT imports; tests implement it with fakes) and small helpers on core's and
// Prometheus' JSON.

export type Level = "trace" | "debug" | "info" | "warn" | "error";

/** One instant-query answer: the Prometheus `data` object, or why there is none. */
export type QueryAnswer = { ok: true; data: PromData } | { ok: false; error: string };

export interface PromData {
  resultType: string;
  result: Array<{ metric: Record<string, string>; value: [number, string] }>;
}

/** Everything outside the sandbox. Methods throw `HostFailure` when the host says no. */
export interface Host {
  manifests(): Manifest[];
  queryBatch(promql: string[], at: number): QueryAnswer[];
  /** Returns the id core stored; throws HostFailure (rejected 409 = already stored). */
  submit(record: object): string;
  log(level: Level, message: string, fields?: Record<string, string>): void;
  nowMs(): number;
}

/** A host call that produced no value: `call` names the import, `kind` the host-error case. */
export class HostFailure extends Error {
  constructor(
    readonly call: string,
    readonly kind: string,
    readonly status: number | null,
    detail: string,
  ) {
    super(`${call}: ${kind}: ${detail}`);
  }
}

export interface Manifest {
  name: string;
  team?: string;
  tier?: string;
  slos?: Array<{ name: string; target: number; window?: string; indicator_query?: string }>;
}

/** observe's substitution: `$service` and `${service}` become the manifest's name. */
export function indicatorQuery(template: string, service: string): string {
  return template.replaceAll("${service}", service).replaceAll("$service", service);
}

/** First sample of an instant vector, or null for no series / NaN. */
export function firstValue(a: QueryAnswer): number | null {
  if (!a.ok || !Array.isArray(a.data?.result) || a.data.result.length === 0) return null;
  const v = Number.parseFloat(a.data.result[0].value[1]);
  return Number.isFinite(v) ? v : null;
}

/** core's timestamp shape: YYYY-MM-DDTHH:MM:SS.ffffff+00:00. */
export function isoMicros(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "000+00:00");
}
