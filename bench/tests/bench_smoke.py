#!/usr/bin/env python3
"""ctest: runs pointex-bench briefly on tiny data and checks its exit status and its JSON (the
figures are there, every result as the workload defines it, conservation held). No figure is
compared with a speed: performance is never asserted in tests.

    bench_smoke.py BENCH --workload W [--mode batched|single|open]
    bench_smoke.py BENCH --workload exchange --mode exchange    (W5, the alliance exchange)
    bench_smoke.py BENCH --workload orders --mode orders        (W6, orders, simulated provider)
    bench_smoke.py BENCH --http POINTEXD CONFIG     (every workload against a real pointexd, in
                                                     closed loop, and two-phase in open loop)
    bench_smoke.py BENCH --http POINTEXD CONFIG --workload orders   (W6 against pointexd)
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

TINY = ["--accounts", "200", "--duration", "0.5", "--warmup", "0.1"]


def fail(msg):
    print("FAILED: " + msg)
    sys.exit(1)


def check_run(run, workload):
    for field in ("transfers_per_s", "events_per_s", "latency_ms", "results", "conserved",
                  "outcomes_ok", "planned_failures", "transfers"):
        if field not in run:
            fail("run has no %r: %s" % (field, run))
    for q in ("p50", "p99", "p999"):
        if q not in run["latency_ms"]:
            fail("latency has no %s" % q)
    if not run["conserved"]:
        fail("conservation: %s" % run.get("conservation"))
    if not run["outcomes_ok"]:
        fail("results: %s" % run.get("outcome_problems"))
    if run["workload"] != workload:
        fail("workload %s, expected %s" % (run["workload"], workload))
    results = run["results"]
    kinds = {"uniform": {"transfer"}, "hot": {"transfer"}, "earn-redeem": {"earn", "redeem"},
             "two-phase": {"pending", "post", "void"}}[workload]
    if not set(results) <= kinds or not results:
        fail("result kinds %s, expected among %s" % (sorted(results), sorted(kinds)))
    if workload == "earn-redeem":
        refused = results.get("redeem", {}).get("exceeds_credits", 0)
        if refused != run["planned_failures"]:
            fail("%d redeems refused, %d planned" % (refused, run["planned_failures"]))
    if workload == "two-phase":
        pendings = sum(results.get("pending", {}).values())
        finished = sum(results.get("post", {}).values()) + sum(results.get("void", {}).values())
        if pendings != finished:
            fail("%d pending transfers, %d posted or voided" % (pendings, finished))


def check_orders(run, mode):
    """W6: every creation awaited its payment, the merchant got exactly the paid orders'
    points, and nothing was left open or pending."""
    if run["workload"] != "orders" or run["mode"] != mode:
        fail("orders run: %s" % run)
    if not run["conserved"]:
        fail("conservation: %s" % run.get("conservation"))
    results = run["results"]["order"]
    if results["refused"] != 0 or results["created"] == 0:
        fail("order results: %s" % results)
    if not 0 < results["paid_by_rule"] < results["created"]:
        fail("with failure_rate 0.1 some but not all payments succeed: %s" % results)
    if run["latency_ms"]["count"] == 0:
        fail("no order latency recorded")


def embedded(args):
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        out = os.path.join(tmp, "out.json")
        argv = [args.bench, "--workload", args.workload, "--runs-only", "--verify",
                "--json", out] + TINY
        if args.mode in ("exchange", "orders"):
            argv += ["--clients", "8"]
        elif args.mode == "single":
            argv += ["--mode", "single", "--clients", "8"]
        elif args.mode == "open":
            argv += ["--rate", "2000", "--batch", "4"]
        else:
            argv += ["--batch", "64", "--clients", "2"]
        print(" ".join(argv), flush=True)
        rc = subprocess.run(argv, timeout=300).returncode
        if rc != 0:
            fail("pointex-bench exited %d" % rc)
        data = json.load(open(out))
        if not data.get("ok"):
            fail("JSON says not ok")
        if not data.get("verify", {}).get("ok"):
            fail("verify: %s" % data.get("verify"))
        if len(data["runs"]) != 1:
            fail("%d runs" % len(data["runs"]))
        run = data["runs"][0]
        if args.mode == "exchange":
            if run["workload"] != "exchange" or not run["conserved"]:
                fail("exchange run: %s" % run)
            if run["results"]["exchange"]["failed"] != 0 or run["results"]["exchange"]["ok"] == 0:
                fail("exchange results: %s" % run["results"])
            if run["latency_ms"]["count"] == 0:
                fail("no exchange latency recorded")
            return
        if args.mode == "orders":
            check_orders(run, "orders")
            return
        check_run(run, {"w1": "uniform", "w2": "hot", "w3": "earn-redeem",
                        "w4": "two-phase"}.get(args.workload, args.workload))
        expected_mode = {"batched": "batched", "single": "single", "open": "open"}[args.mode]
        if run["mode"] != expected_mode:
            fail("mode %s, expected %s" % (run["mode"], expected_mode))


def http(args):
    pointexd, config = args.http
    with tempfile.TemporaryDirectory(prefix="bench-smoke-http-") as tmp:
        port_file = os.path.join(tmp, "port")
        daemon = subprocess.Popen([pointexd, "--config", config, "--data-dir",
                                   os.path.join(tmp, "data"), "--listen", "127.0.0.1:0",
                                   "--port-file", port_file, "--log-level", "warn"])
        try:
            deadline = time.time() + 60
            port = ""
            while time.time() < deadline and not port.isdigit():
                if daemon.poll() is not None:
                    fail("pointexd exited %d" % daemon.returncode)
                time.sleep(0.05)
                port = open(port_file).read().strip() if os.path.exists(port_file) else ""
            if not port.isdigit():
                fail("pointexd did not write its port")
            base = [args.bench, "--http", "127.0.0.1:" + port, "--key",
                    "dev-admin-key-0123456789", "--connections", "4"]
            # Closed loop, every workload; then open loop at a rate a loaded machine keeps
            # up with (the figure is not checked, only that the run happened and held).
            runs = [(["--batch", "1", "--workload", "all"] + TINY,
                     ["uniform", "hot", "earn-redeem", "two-phase"], "http"),
                    (["--batch", "2", "--workload", "two-phase", "--rate", "400", "--accounts",
                      "200", "--duration", "1", "--warmup", "0.2"], ["two-phase"], "http-open")]
            if args.workload == "orders":
                runs = [(["--workload", "orders"] + TINY, ["orders"], "http")]
            for extra, workloads, mode in runs:
                out = os.path.join(tmp, "out.json")
                argv = base + extra + ["--json", out]
                print(" ".join(argv), flush=True)
                rc = subprocess.run(argv, timeout=300).returncode
                if rc != 0:
                    fail("pointex-bench --http exited %d" % rc)
                data = json.load(open(out))
                if not data.get("ok") or len(data["runs"]) != len(workloads):
                    fail("JSON: ok %s, %d runs" % (data.get("ok"), len(data["runs"])))
                for run, w in zip(data["runs"], workloads):
                    if w == "orders":
                        check_orders(run, mode)
                        continue
                    check_run(run, w)
                    if run["errors"] != 0:
                        fail("%s: %d request errors" % (w, run["errors"]))
                    if run["mode"] != mode:
                        fail("%s: mode %s, expected %s" % (w, run["mode"], mode))
                    if mode == "http-open" and (run["rate_offered"] != 400 or
                                                run["latency_ms"]["count"] == 0):
                        fail("%s: open loop run: %s" % (w, run))
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=120)
        if daemon.returncode != 0:
            fail("pointexd exited %d on SIGTERM" % daemon.returncode)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bench")
    p.add_argument("--workload", default="uniform")
    p.add_argument("--mode", default="batched",
                   choices=["batched", "single", "open", "exchange", "orders"])
    p.add_argument("--http", nargs=2, metavar=("POINTEXD", "CONFIG"))
    args = p.parse_args()
    if args.http:
        http(args)
    else:
        embedded(args)
    print("ok")


if __name__ == "__main__":
    main()
