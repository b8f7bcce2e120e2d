// TypeScript view of the parts of the nthlayer:worker contract (wit/) this module imports,
// in the shapes componentize-js gives them: records as camelCase objects, option<T> as
// T | undefined, a result<T, E> return as T (throwing { payload: E }), a result inside a
// list as { tag: "ok" | "err", val }, variants as { tag, val }, enums as strings.
declare module "nthlayer:worker/types" {
  export type Json = string;
  export interface Rejection {
    status: number;
    code: string;
    detail: Json;
  }
  export type HostError =
    | { tag: "denied" | "unavailable" | "timeout" | "invalid"; val: string }
    | { tag: "rejected"; val: Rejection };
  export interface FieldTest {
    path: string;
    op: "any-of" | "none-of";
    values: string[];
  }
  export interface WakeOn {
    record: "assessment" | "verdict";
    kind: string;
    where: FieldTest[];
  }
  export interface Task {
    name: string;
    intervalSeconds: number;
    summary: string;
    wake: WakeOn[];
  }
  export interface Emission {
    record: "assessment" | "verdict";
    kind: string;
  }
  export interface ModuleInfo {
    name: string;
    version: string;
    tasks: Task[];
    needs: string[];
    emits: Emission[];
  }
  export interface CycleInput {
    task: string;
    state?: Json;
    config: Json;
    args?: Json;
  }
  export interface CycleOutput {
    state?: Json;
    result?: Json;
    emitted: number;
  }
}

declare module "nthlayer:worker/core" {
  import type { Json } from "nthlayer:worker/types";
  export function getManifests(): Json;
  export function submitAssessment(record: Json, source: string | undefined): string;
}

declare module "nthlayer:worker/prometheus" {
  import type { HostError, Json } from "nthlayer:worker/types";
  export function query(promql: string, at: number | undefined): Json;
  export function queryBatch(
    promql: string[],
    at: number | undefined,
  ): Array<{ tag: "ok"; val: Json } | { tag: "err"; val: HostError }>;
}

declare module "nthlayer:worker/log" {
  export type Level = "trace" | "debug" | "info" | "warn" | "error";
  export function log(level: Level, message: string, fields: Array<[string, string]>): void;
}
