// Native tests of the report logic against a fake Host (no wasm, no network).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Host, HostFailure, Manifest, QueryAnswer, indicatorQuery } from "../src/host.js";
import { DEFAULT_CONFIG, budgetQuery, parseState, run, runReport } from "../src/module.js";

const NOW = Date.UTC(2026, 11, 1, 9, 30, 0, 123);

function vector(v: string): QueryAnswer {
  return { ok: true, data: { resultType: "vector", result: [{ metric: {}, value: [NOW / 1000, v] }] } };
}
const EMPTY: QueryAnswer = { ok: true, data: { resultType: "vector", result: [] } };

class FakeHost implements Host {
  submitted: any[] = [];
  batches: string[][] = [];
  logs: string[] = [];
  reject409 = new Set<string>();
  constructor(
    private ms: Manifest[],
    private answers: Record<string, QueryAnswer>,
  ) {}
  manifests() {
    return this.ms;
  }
  queryBatch(promql: string[], at: number) {
    assert.equal(at, Math.floor(NOW / 1000));
    this.batches.push(promql);
    return promql.map((q) => this.answers[q] ?? EMPTY);
  }
  submit(record: any) {
    if (this.reject409.has(record.id)) throw new HostFailure("core.submit-assessment", "rejected", 409, "duplicate");
    this.submitted.push(record);
    return record.id;
  }
  log(_level: string, message: string) {
    this.logs.push(message);
  }
  nowMs() {
    return NOW;
  }
}

const MANIFESTS: Manifest[] = [
  {
    name: "payment-api",
    team: "payments",
    tier: "standard",
    slos: [{ name: "availability", target: 99.95, window: "30d", indicator_query: 'sli{service="$service"}' }],
  },
  {
    name: "checkout-api",
    team: "commerce",
    tier: "critical",
    slos: [
      { name: "availability", target: 99.9, window: "30d", indicator_query: 'sli{service="$service"}' },
      { name: "latency", target: 99.0, window: "7d", indicator_query: 'sli{service="${service}",slo="latency"}' },
      { name: "throughput", target: 99.0, window: "30d" },
    ],
  },
  {
    name: "ledger",
    team: "payments",
    slos: [{ name: "availability", target: 99.5, window: "30d", indicator_query: 'sli{service="ledger"}' }],
  },
];

const ANSWERS: Record<string, QueryAnswer> = {
  'sli{service="payment-api"}': vector("0.99995"),
  'sli{service="checkout-api"}': vector("0.9995"),
  'sli{service="checkout-api",slo="latency"}': vector("0.97"),
  [budgetQuery(DEFAULT_CONFIG.budget_metric, "checkout-api", "availability")]: vector("0.6"),
  'sli{service="ledger"}': { ok: false, error: "timeout: prometheus" },
};

test("substitutes both service placeholders", () => {
  assert.equal(indicatorQuery('a{s="$service"} / b{s="${service}"}', "x"), 'a{s="x"} / b{s="x"}');
});

test("one record per team, sorted, with statuses, margins and budgets", () => {
  const h = new FakeHost(MANIFESTS, ANSWERS);
  const out = runReport(h, { seq: 7 }, DEFAULT_CONFIG);
  assert.equal(h.batches.length, 1, "all queries in one batch");
  assert.equal(h.batches[0].length, 8, "SLI + budget for each of the 4 SLOs with a query");
  assert.deepEqual(out.state, { seq: 8 });
  assert.equal(out.emitted, 2);
  assert.deepEqual(out.result.teams, ["commerce", "payments"]);
  const [commerce, payments] = h.submitted;
  assert.equal(commerce.id, "rpt-commerce-20261201-00007");
  assert.equal(commerce.service, "team:commerce");
  assert.equal(commerce.kind, "slo_report");
  assert.equal(commerce.created_at, "2026-12-01T09:30:00.123000+00:00");
  const c = commerce.data;
  assert.equal(c.status, "MISSED");
  assert.deepEqual([c.slo_count, c.met_count, c.missed_count, c.no_data_count], [3, 1, 1, 1]);
  assert.equal(c.compliance_percent, 50);
  const [avail, latency, throughput] = c.services[0].slos;
  assert.equal(avail.current_sli, 0.9995 * 100);
  assert.equal(avail.status, "MET");
  assert.equal(avail.budget_remaining, 0.6);
  assert.equal(avail.margin, 0.9995 * 100 - 99.9);
  assert.equal(latency.status, "MISSED");
  assert.equal(latency.budget_remaining, null);
  assert.equal(throughput.status, "NO_QUERY");
  assert.deepEqual(c.worst, { service: "checkout-api", slo_name: "latency", margin: 0.97 * 100 - 99.0 });

  // payments: services sorted (ledger before payment-api); ledger's failed query is NO_DATA
  // with the host's reason, and does not make the team MISSED.
  const p = payments.data;
  assert.deepEqual(p.services.map((s: any) => s.service), ["ledger", "payment-api"]);
  assert.equal(p.services[0].tier, "standard");
  assert.equal(p.services[0].slos[0].status, "NO_DATA");
  assert.equal(p.services[0].slos[0].error, "timeout: prometheus");
  assert.equal(p.status, "MET");
  assert.equal(p.compliance_percent, 100);
});

test("a duplicate from a retried cycle counts as stored; other refusals fail the cycle", () => {
  const h = new FakeHost(MANIFESTS, ANSWERS);
  h.reject409.add("rpt-commerce-20261201-00001");
  const out = runReport(h, parseState(undefined), DEFAULT_CONFIG);
  assert.deepEqual(out.result.ids, ["rpt-commerce-20261201-00001", "rpt-payments-20261201-00001"]);
  const h2 = new FakeHost(MANIFESTS, ANSWERS);
  h2.submit = () => {
    throw new HostFailure("core.submit-assessment", "denied", null, "core not granted");
  };
  assert.throws(() => runReport(h2, { seq: 1 }, DEFAULT_CONFIG), /denied: core not granted/);
});

test("no manifests: no queries, no records", () => {
  const h = new FakeHost([], {});
  const out = runReport(h, { seq: 3 }, DEFAULT_CONFIG);
  assert.equal(h.batches.length, 0);
  assert.equal(out.emitted, 0);
  assert.deepEqual(out.state, { seq: 4 });
});

test("run() takes the JSON the host hands over", () => {
  const h = new FakeHost(MANIFESTS, ANSWERS);
  const out = run(h, '{"seq":41}', '{"budget_metric":"b"}', "my-report");
  assert.equal(out.state.seq, 42);
  assert.equal(h.submitted[0].producer, "nthlayer-my-report");
  assert.ok(h.batches[0].includes('last_over_time(b{service="checkout-api",slo="availability"}[1d])'));
});

test("state: a missing or malformed seq starts at 1", () => {
  assert.deepEqual(parseState(undefined), { seq: 1 });
  assert.deepEqual(parseState('{"seq":"x"}'), { seq: 1 });
  assert.deepEqual(parseState('{"seq":12}'), { seq: 12 });
});
