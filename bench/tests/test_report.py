#!/usr/bin/env python3
"""ctest: the report's medians, ratios and table (bench/report.py) on a fixture of runs, and the
PostgreSQL driver's pgbench-log arithmetic (bench/postgres/pgbaseline.py) on a made-up log. No
database, no engine: pure functions."""

import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "postgres"))

import pgbaseline  # noqa: E402
import report  # noqa: E402


def fixture():
    with open(os.path.join(HERE, "fixture_results.json")) as f:
        return json.load(f)["runs"]


def find(summary, **kw):
    hits = [s for s in summary if all(s[k] == v for k, v in kw.items())]
    assert len(hits) == 1, (kw, hits)
    return hits[0]


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.summary = report.summarize(fixture())
        self.ratios = {r["workload"]: r for r in report.compute_ratios(self.summary)}

    def test_medians_of_repetitions(self):
        b = find(self.summary, system="pointex", mode="batched", workload="uniform")
        self.assertEqual(b["repeats"], 3)
        self.assertEqual(b["transfers_per_s"], 110000)
        s1 = find(self.summary, system="pointex", mode="single", workload="uniform", clients=1)
        self.assertEqual(s1["p50"], 1.5)  # median of 0.5, 1.5, 2.5
        self.assertEqual(s1["p999"], 3.0)

    def test_postgresql_best_client_count(self):
        r = self.ratios["uniform"]
        self.assertEqual(r["postgresql_best_clients"], 64)
        self.assertEqual(r["postgresql_best_per_s"], 1100)
        self.assertEqual(self.ratios["hot"]["postgresql_best_clients"], 64)

    def test_ratios(self):
        r = self.ratios["uniform"]
        self.assertAlmostEqual(r["batched_ratio"], 100.0)
        self.assertEqual(r["single_best_clients"], 64)
        self.assertAlmostEqual(r["single_best_ratio"], 50000 / 1100)
        self.assertAlmostEqual(r["single_same_clients_ratio"]["1"], 10.0)
        self.assertAlmostEqual(r["single_same_clients_ratio"]["64"], 50000 / 1100)
        self.assertAlmostEqual(self.ratios["hot"]["batched_ratio"], 500.0)
        self.assertEqual(self.ratios["hot"]["batched_ratio_target"], 175.0)
        self.assertNotIn("batched_ratio", self.ratios["earn-redeem"])
        self.assertAlmostEqual(self.ratios["earn-redeem"]["single_best_ratio"], 60.0)

    def test_batched_at_its_best_depth(self):
        # Another depth for W1, below and above the 4-in-flight median of 110,000: the ratio
        # and the table take the best, as they take PostgreSQL's best client count.
        runs = fixture()
        base = [r for r in runs if r["mode"] == "batched" and r["workload"] == "uniform"][0]
        for clients, per_s in ((2, 90000), (32, 165000)):
            extra = json.loads(json.dumps(base))
            extra.update(clients=clients, transfers_per_s=per_s)
            runs.append(extra)
        summary = report.summarize(runs)
        ratios = {r["workload"]: r for r in report.compute_ratios(summary)}
        self.assertEqual(len([s for s in summary if s["mode"] == "batched"
                              and s["workload"] == "uniform"]), 3)
        self.assertEqual(ratios["uniform"]["batched_best_clients"], 32)
        self.assertAlmostEqual(ratios["uniform"]["batched_ratio"], 150.0)
        self.assertEqual(ratios["hot"]["batched_best_clients"], 4)
        table = report.format_table(summary, list(ratios.values()))
        self.assertIn("batched (32 in flight) 150.0x (target >= 75x: met)", table)
        self.assertIn("32x8190", table)

    def test_failed_counts(self):
        self.assertEqual(find(self.summary, system="pointex", workload="earn-redeem")["failed"], 30)
        self.assertEqual(find(self.summary, system="postgresql", workload="earn-redeem",
                              mode="single")["failed"], 33)

    def test_table(self):
        table = report.format_table(self.summary, list(self.ratios.values()))
        self.assertIn("W1 uniform", table)
        self.assertIn("110,000", table)
        self.assertIn("batched (4 in flight) 100.0x (target >= 75x: met)", table)
        self.assertIn("batched (4 in flight) 500.0x (target >= 175x: met)", table)
        self.assertIn("(median of 3: 100,000, 120,000, 110,000)", table)
        self.assertIn("1,000/s", table)  # the open-loop row's offered rate
        self.assertNotIn("FAILED", table)

    def test_a_saturated_open_loop_is_marked(self):
        runs = fixture()
        runs[-1]["transfers_per_s"] = 400  # PostgreSQL offered 1000/s, answered 400/s
        summary = report.summarize(runs)
        table = report.format_table(summary, report.compute_ratios(summary))
        self.assertEqual(table.count("saturated"), 1)
        self.assertNotIn("saturated", report.format_table(self.summary, []))

    def test_open_loop_saturated_latency_is_a_lower_bound(self):
        # Every transaction scheduled before the window (pgbench fell behind): the latencies of
        # what ran are reported, not zeros.
        txs = [(100.0 + 0.01 * i, 102.0 + 0.5 * i, (2.0 + 0.5 * i - 0.01 * i) * 1e6)
               for i in range(8)]
        fig = pgbaseline.open_loop_figures(txs, 1.0, 2.0, 100.0)
        self.assertGreater(fig["p50"], 1000.0)
        self.assertEqual(fig["latency_count"], 8)

    def test_a_failed_check_shows(self):
        runs = fixture()
        runs[0]["conserved"] = False
        summary = report.summarize(runs)
        table = report.format_table(summary, report.compute_ratios(summary))
        self.assertIn("FAILED", table)

    def test_charts_when_gnuplot_is_there(self):
        import shutil
        if shutil.which("gnuplot") is None:
            self.skipTest("no gnuplot")
        with tempfile.TemporaryDirectory() as d:
            charts = report.write_charts(self.summary, d)
            names = sorted(os.path.basename(c) for c in charts)
            self.assertEqual(names, ["latency_vs_clients.svg", "open_loop.svg",
                                     "throughput.svg"])
            for c in charts:
                self.assertGreater(os.path.getsize(c), 1000)


class PgbenchLogTest(unittest.TestCase):
    def test_percentile_is_nearest_rank(self):
        values = list(range(1, 1001))
        self.assertEqual(pgbaseline.percentile(values, 0.5), 500)
        self.assertEqual(pgbaseline.percentile(values, 0.99), 990)
        self.assertEqual(pgbaseline.percentile(values, 0.999), 999)
        self.assertEqual(pgbaseline.percentile([], 0.5), 0.0)

    def test_window_from_a_log(self):
        # 30 transactions of one client, one every 0.1 s from t=1000.0, 2 ms each; then one
        # failed line. Warm-up 1 s, window 1 s: those ending in [1001.0, 2.0].
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tx.123")
            with open(path, "w") as f:
                for i in range(30):
                    end = 1000.0 + 0.1 * i + 0.002
                    f.write("0 %d 2000 0 %d %d\n" % (i, int(end), round((end % 1) * 1e6)))
                f.write("0 30 failed 0 1003 0\n")
            txs, failed = pgbaseline.parse_pgbench_logs([path])
        self.assertEqual(len(txs), 30)
        self.assertEqual(failed, 1)
        fig = pgbaseline.window_figures(txs, 1.0, 1.0)
        self.assertEqual(fig["count"], 10)
        self.assertAlmostEqual(fig["per_s"], 10.0)
        self.assertAlmostEqual(fig["p99"], 2.0)

    def test_workload_names(self):
        self.assertEqual(pgbaseline.canonical_workload("w3"), "earn-redeem")
        self.assertEqual(pgbaseline.canonical_workload("two-phase"), "two-phase")
        with self.assertRaises(ValueError):
            pgbaseline.canonical_workload("w9")


if __name__ == "__main__":
    unittest.main(verbosity=2)
