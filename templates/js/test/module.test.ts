// Native tests of src/module.ts against a fake Host: `./test.sh` runs them with node --test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Host, HostFailure, Manifest, QueryAnswer } from "../src/host.js";
import { run } from "../src/module.js";

const NOW = Date.UTC(2026, 0, 1, 0, 0, 0);

function fake(manifests: Manifest[], slis: Record<string, string>) {
  const submitted: any[] = [];
  const host: Host = {
    manifests: () => manifests,
    queryBatch: (qs) =>
      qs.map((q): QueryAnswer =>
        q in slis
          ? { ok: true, data: { resultType: "vector", result: [{ metric: {}, value: [NOW / 1000, slis[q]] }] } }
          : { ok: true, data: { resultType: "vector", result: [] } },
      ),
    submit: (r: any) => {
      submitted.push(r);
      return r.id;
    },
    log: () => {},
    nowMs: () => NOW,
  };
  return { host, submitted };
}

const CHECKOUT: Manifest = {
  name: "checkout",
  slos: [
    { name: "availability", target: 99.9, indicator_query: 'sli{service="$service"}' },
    { name: "latency", target: 99.0, indicator_query: 'lat{service="${service}"}' },
    { name: "throughput", target: 99.0 },
  ],
};

test("one snapshot per service; SLI vs objective", () => {
  const { host, submitted } = fake([CHECKOUT], { 'sli{service="checkout"}': "0.9995", 'lat{service="checkout"}': "0.97" });
  const out = run(host, undefined, "{}", "demo");
  assert.equal(out.emitted, 1);
  assert.deepEqual(out.state, { seq: 2 });
  const r = submitted[0];
  assert.equal(r.id, "snap-checkout-20260101-00001");
  assert.equal(r.created_at, "2026-01-01T00:00:00.000000+00:00");
  assert.equal(r.producer, "nthlayer-demo");
  assert.deepEqual(r.data.slos, [
    { name: "availability", objective: 99.9, sli: 0.9995, meeting: true },
    { name: "latency", objective: 99.0, sli: 0.97, meeting: false },
    { name: "throughput", objective: 99.0, sli: null, meeting: null },
  ]);
});

test("the sequence continues from the state; a refused submit fails the cycle", () => {
  const { host } = fake([CHECKOUT, { name: "ledger", slos: [] }], {});
  assert.deepEqual(run(host, '{"seq":7}', "{}", "demo").state, { seq: 9 });
  host.submit = () => {
    throw new HostFailure("core.submit-assessment", "denied", null, "core not granted");
  };
  assert.throws(() => run(host, undefined, "{}", "demo"), /denied: core not granted/);
});
