#!/usr/bin/env python3
"""ctest: the PostgreSQL baseline end to end on tiny data (a private cluster, W1-W4 at 1 and 4
clients, the checks after every run, the cluster stopped and removed). Skipped (exit 77) where
PostgreSQL 15 is not installed: `scripts/setup.sh bench` installs it; tests never do."""

import glob
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "postgres"))

import pgbaseline  # noqa: E402

if not os.access(os.path.join(pgbaseline.PG_BIN, "initdb"), os.X_OK) or \
        not os.access(os.path.join(pgbaseline.PG_BIN, "pgbench"), os.X_OK):
    print("PostgreSQL %s is not installed: skipped" % pgbaseline.PG_VERSION)
    sys.exit(77)

before = set(glob.glob(os.path.join(tempfile.gettempdir(), "pointex-pg-*")))
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "pg.json")
    rc = pgbaseline.main(["--accounts", "200", "--duration", "0.5", "--warmup", "0.1",
                          "--clients", "1,4", "--json", out])
    if rc != 0:
        print("FAILED: pgbaseline exited %d" % rc)
        sys.exit(1)
    import json
    data = json.load(open(out))
runs = data["runs"]
if len(runs) != 8:
    print("FAILED: %d runs" % len(runs))
    sys.exit(1)
for r in runs:
    if not r["conserved"] or not r["outcomes_ok"] or r["transactions_logged"] == 0:
        print("FAILED: %s" % r)
        sys.exit(1)
    if not all(c["ok"] for c in r["checks"]) or len(r["checks"]) < 8:
        print("FAILED: checks %s" % r["checks"])
        sys.exit(1)
two_phase = [r for r in runs if r["workload"] == "two-phase"]
if any(r["results"]["posted"] + r["results"]["voided"] == 0 for r in two_phase):
    print("FAILED: W4 finished no pending transfer")
    sys.exit(1)
left = set(glob.glob(os.path.join(tempfile.gettempdir(), "pointex-pg-*"))) - before
if left:
    print("FAILED: cluster directories left behind: %s" % sorted(left))
    sys.exit(1)
print("ok")
