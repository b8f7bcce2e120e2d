"""Native unit tests of module.py (plain CPython: python3 -m unittest)."""

import unittest

import module
from module import WINDOWS, evaluate, run, window_query


class FakeHost(module.Host):
    def __init__(self, manifests, answers=None):
        self.manifests, self.answers, self.posted, self.logs = manifests, answers or {}, [], []

    def get_manifests(self):
        return self.manifests

    def prom_query_batch(self, queries, at):
        return [self.answers.get(q, {"resultType": "vector", "result": []}) for q in queries]

    def submit_assessment(self, record):
        self.posted.append(record)
        return record["id"]

    def log(self, level, message, fields):
        self.logs.append((level, message))

    def now(self):
        return 1795532927.615105

    def hex8(self):
        return "1423cafe"


def scalar(v):
    return {"resultType": "vector", "result": [{"metric": {}, "value": [0, v]}]}


class BurnRateTest(unittest.TestCase):
    def test_fast_burn_pages_and_a_short_spike_alone_does_not(self):
        d = evaluate("availability", 99.9, "30d", 0, [0.98] * 7)
        self.assertEqual(d["status"], "PAGE")
        self.assertEqual(len(d["firing"]), 4)
        d = evaluate("availability", 99.9, "30d", 0, [0.98] + [0.9999] * 6)
        self.assertEqual((d["status"], d["severity"]), ("OK", "none"))

    def test_slow_burn_opens_a_ticket(self):
        d = evaluate("availability", 99.0, "30d", 0, [0.965] * 7)
        self.assertEqual(d["status"], "TICKET")
        self.assertEqual([f["long_window"] for f in d["firing"]], ["1d", "3d"])
        self.assertAlmostEqual(d["burn_rates"]["1h"], 3.5)

    def test_missing_windows_never_fire(self):
        d = evaluate("a", 99.9, "30d", 0, [None, 0.5, 0.5, None, None, None, None])
        self.assertEqual(d["status"], "OK")
        self.assertIsNone(d["burn_rates"]["5m"])
        self.assertEqual(evaluate("a", 99.9, "30d", 0, [None] * 7)["status"], "NO_DATA")
        self.assertEqual(evaluate("a", 100, "30d", 0, [1.0] * 7)["status"], "ERROR")

    def test_every_named_slo_with_a_target_gets_one_record(self):
        manifests = [{"name": "checkout", "slos": [
            {"name": "availability", "target": 99.9, "window": "30d", "indicator_query": 'sli{service="$service"}'},
            {"name": "latency", "target": 99.0},
            {"name": "", "target": 99.0},
            {"name": "untargeted"},
        ]}]
        answers = {window_query('sli{service="checkout"}', w, s): scalar("0.98") for w, s in WINDOWS}
        host = FakeHost(manifests, answers)
        state, emitted = run(host, module.NAME, None, None)
        self.assertEqual((state, emitted), ({"seq": 3}, 2))
        self.assertEqual(host.posted[0]["data"]["status"], "PAGE")
        self.assertEqual(host.posted[0]["data"]["evaluated_at"], 1795532880)
        self.assertEqual(host.posted[0]["id"], "asm-2026-11-24-1423cafe-00001")
        self.assertEqual(host.posted[0]["created_at"], "2026-11-24T15:08:47.615105+00:00")
        self.assertEqual(host.posted[1]["data"]["error"], "No query defined")


if __name__ == "__main__":
    unittest.main()
