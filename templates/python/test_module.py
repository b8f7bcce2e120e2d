"""Native unit tests of module.py: python3 -m unittest"""

import unittest

import module


class FakeHost(module.Host):
    def __init__(self, manifests, slis):
        self.manifests, self.slis, self.posted = manifests, slis, []

    def get_manifests(self):
        return self.manifests

    def prom_query(self, promql):
        if promql not in self.slis:
            return {"resultType": "vector", "result": []}
        return {"resultType": "vector", "result": [{"metric": {}, "value": [0, self.slis[promql]]}]}

    def submit_assessment(self, record):
        self.posted.append(record)
        return record["id"]

    def log(self, level, message, fields):
        pass

    def now(self):
        return 1767225600.0

    def hex8(self):
        return "00c0ffee"


class SnapshotTest(unittest.TestCase):
    def test_one_snapshot_per_service(self):
        manifests = [{"name": "checkout", "slos": [
            {"name": "availability", "target": 99.9, "indicator_query": 'sli{service="$service"}'},
            {"name": "latency", "target": 99.0},
        ]}]
        host = FakeHost(manifests, {'sli{service="checkout"}': "0.9995"})
        state, emitted = module.run(host, module.NAME, None)
        self.assertEqual((state, emitted), ({"seq": 2}, 1))
        slos = host.posted[0]["data"]["slos"]
        self.assertTrue(slos[0]["meeting"])
        self.assertIsNone(slos[1]["sli"])
        self.assertEqual(host.posted[0]["id"], "asm-2026-01-01-00c0ffee-00001")


if __name__ == "__main__":
    unittest.main()
