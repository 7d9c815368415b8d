#!/usr/bin/env python3
"""The PostgreSQL baseline of pointex-bench: W1-W4 with pgbench against a private cluster.

Standalone:  python3 bench/postgres/pgbaseline.py --workload all --clients 1,8,64
             (prints a table; --json FILE writes every figure)
As a module: bench/run.py (`make bench`) starts one Cluster and calls Cluster.run() between
             PointEx's runs.

What it does, on every exit path the same:
- installs PostgreSQL 15 from Debian if its binaries are missing (apt-get, idempotent);
- creates a cluster with initdb in a fresh temporary directory (as the `postgres` user when
  run as root: initdb refuses root), listening on 127.0.0.1 only, on a free port, with durable
  commits (fsync = on, synchronous_commit = on);
- per run: recreates the schema (schema.sql: 1 issuer, N funded members), runs pgbench with the
  workload's script (w1..w4 *.sql) for warm-up + duration with a per-transaction log, and
  computes throughput and p50/p99/p999 over the measured window from that log (pgbench itself
  prints only the average);
- checks conservation and consistency (check.sql) after every run;
- stops the cluster and removes its directory (finally, atexit, SIGINT/SIGTERM).

Python standard library only.
"""

import argparse
import atexit
import glob
import json
import math
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PG_VERSION = "15"
PG_BIN = "/usr/lib/postgresql/%s/bin" % PG_VERSION

FIRST_MEMBER = 1000001
FUNDING = 1000000000
OVERDRAW = 1000000000000000
# Transfer ids of a run: base + client_id * 1e9 + n (funding entries use 1..members).
ID_BASE = 1000000000000000

WORKLOADS = ["uniform", "hot", "earn-redeem", "two-phase"]
ALIASES = {"w1": "uniform", "w2": "hot", "w3": "earn-redeem", "w4": "two-phase"}
SCRIPTS = {
    "uniform": "w1_uniform.sql",
    "hot": "w2_hot.sql",
    "earn-redeem": "w3_earn_redeem.sql",
    "two-phase": "w4_two_phase.sql",
}
# Server settings besides the defaults. Durability stays on (fsync, synchronous_commit,
# full_page_writes are PostgreSQL's defaults and are set explicitly); memory and checkpoint
# spacing are sized for the machine so that the baseline is not handicapped by defaults meant
# for tiny servers.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "max_connections": "300",
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "autovacuum": "on",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def canonical_workload(name):
    name = ALIASES.get(name.lower(), name)
    if name not in WORKLOADS:
        raise ValueError("unknown workload %r (uniform, hot, earn-redeem, two-phase, w1..w4)" % name)
    return name


def ensure_installed():
    """Installs PostgreSQL 15 (server and client, pgbench included) if missing. Idempotent."""
    if all(os.access(os.path.join(PG_BIN, b), os.X_OK)
           for b in ("initdb", "pg_ctl", "postgres", "pgbench", "psql")):
        return
    log("postgres: installing postgresql-%s from Debian" % PG_VERSION)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                           "postgresql-%s" % PG_VERSION, "postgresql-client-%s" % PG_VERSION],
                   check=True, env=env)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_values, q):
    """Nearest rank, as pointex-bench's histogram: the value at rank ceil(q * n)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def window_figures(transactions, warmup_s, duration_s):
    """Figures of the measured window from (start_s, end_s, latency_us) per transaction.

    The run starts at the first transaction's start; the window is [start + warmup,
    start + warmup + duration]. Throughput counts the transactions that ended in the window;
    latency those that started in it and ended in it (as pointex-bench's closed loop)."""
    if not transactions:
        return {"count": 0, "per_s": 0.0, "p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0,
                "latency_count": 0}
    t0 = min(t[0] for t in transactions)
    lo = t0 + warmup_s
    hi = lo + duration_s
    ended = sum(1 for t in transactions if lo <= t[1] <= hi)
    lat = sorted(t[2] / 1000.0 for t in transactions if t[0] >= lo and t[1] <= hi)
    return {
        "count": ended,
        "per_s": ended / duration_s,
        "p50": percentile(lat, 0.5),
        "p99": percentile(lat, 0.99),
        "p999": percentile(lat, 0.999),
        "max": lat[-1] if lat else 0.0,
        "latency_count": len(lat),
    }


def open_loop_figures(transactions, warmup_s, duration_s, t0):
    """Open loop (pgbench --rate): latency counts from the scheduled start (pgbench does so
    under --rate) for every transaction scheduled in the window, however late it ended."""
    lo = t0 + warmup_s
    hi = lo + duration_s
    ended = sum(1 for t in transactions if lo <= t[1] <= hi)
    lat = sorted(t[2] / 1000.0 for t in transactions if lo <= t[0] < hi)
    if not lat:
        # Saturated: pgbench fell so far behind its schedule that nothing scheduled in the
        # window ran before the end. The latencies of what did run are lower bounds.
        lat = sorted(t[2] / 1000.0 for t in transactions)
    return {"count": ended, "per_s": ended / duration_s, "p50": percentile(lat, 0.5),
            "p99": percentile(lat, 0.99), "p999": percentile(lat, 0.999),
            "max": lat[-1] if lat else 0.0, "latency_count": len(lat)}


def parse_pgbench_logs(paths):
    """Per-transaction log lines: client_id transaction_no time script_no time_epoch time_us
    [schedule_lag]; `time` is the latency in us (under --rate: from the scheduled start), the
    epoch fields when it ended. Returns [(start_s, end_s, latency_us)] and the failed count."""
    out = []
    failed = 0
    for path in paths:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6:
                    continue
                if not parts[2].isdigit():  # "failed" or "skipped"
                    failed += 1
                    continue
                latency_us = int(parts[2])
                end = int(parts[4]) + int(parts[5]) / 1e6
                out.append((end - latency_us / 1e6, end, latency_us))
    return out, failed


class Cluster:
    """A private PostgreSQL cluster in a temporary directory; use as a context manager."""

    def __init__(self, keep=False):
        self.dir = None
        self.port = None
        self.user = None
        self.keep = keep
        self.started = False
        self.version = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _as_owner(self, argv):
        """Runs server-side commands as the cluster's owner (not root: initdb refuses it)."""
        if os.geteuid() == 0:
            return ["runuser", "-u", self.user, "--"] + argv
        return argv

    def _owner(self):
        if os.geteuid() != 0:
            return pwd.getpwuid(os.geteuid()).pw_name
        try:
            pwd.getpwnam("postgres")
            return "postgres"
        except KeyError:
            name = "pointex-pg"
            try:
                pwd.getpwnam(name)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                                "/usr/sbin/nologin", name], check=True)
            return name

    def start(self):
        ensure_installed()
        self.user = self._owner()
        self.dir = tempfile.mkdtemp(prefix="pointex-pg-")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, user=self.user)
        atexit.register(self.stop)
        data = os.path.join(self.dir, "data")
        log("postgres: initdb in %s (owner %s)" % (data, self.user))
        subprocess.run(self._as_owner([os.path.join(PG_BIN, "initdb"), "-D", data, "-U",
                                       "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL, cwd=self.dir)
        self.port = free_port()
        opts = " ".join("-c %s=%s" % kv for kv in SETTINGS.items())
        opts += " -p %d -c unix_socket_directories=%s" % (self.port, self.dir)
        subprocess.run(self._as_owner([os.path.join(PG_BIN, "pg_ctl"), "-D", data, "-o", opts,
                                       "-l", os.path.join(self.dir, "server.log"), "-w",
                                       "-t", "60", "start"]),
                       check=True, stdout=subprocess.DEVNULL, cwd=self.dir)
        self.started = True
        self.version = self.psql_value("SHOW server_version")
        log("postgres: %s listening on 127.0.0.1:%d" % (self.version, self.port))

    def stop(self):
        if self.started:
            self.started = False
            subprocess.run(self._as_owner([os.path.join(PG_BIN, "pg_ctl"), "-D",
                                           os.path.join(self.dir, "data"), "-m", "fast", "-w",
                                           "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
            log("postgres: stopped")
        if self.dir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # -- SQL ---------------------------------------------------------------------------------
    def _conn(self):
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]

    def psql(self, args, variables=None):
        argv = [os.path.join(PG_BIN, "psql")] + self._conn() + ["-X", "-q", "-v",
                                                                 "ON_ERROR_STOP=1"]
        for k, v in (variables or {}).items():
            argv += ["-v", "%s=%s" % (k, v)]
        r = subprocess.run(argv + args + ["postgres"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql %s failed: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def psql_value(self, sql):
        return self.psql(["-At", "-c", sql]).strip()

    def setting(self, name):
        return self.psql_value("SHOW %s" % name)

    # -- a run -------------------------------------------------------------------------------
    def reset(self, members):
        self.psql(["-f", os.path.join(HERE, "schema.sql")],
                  {"members": members, "first_member": FIRST_MEMBER, "funding": FUNDING})

    def check(self):
        """check.sql: [(what, ok, detail)]."""
        out = self.psql(["-At", "-F", "|", "-f", os.path.join(HERE, "check.sql")],
                        {"overdraw": OVERDRAW})
        rows = []
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) >= 2:
                rows.append((parts[0], parts[1] == "t", parts[2] if len(parts) > 2 else ""))
        return rows

    def run(self, workload, clients, members, duration_s, warmup_s, rate=None,
            earn_share=0.7, redeem_fail_share=0.1, post_share=0.5, log_dir=None):
        """One pgbench run on a fresh schema; returns its figures (a dict like pointex-bench's
        JSON runs) with `conserved` and `checks`."""
        workload = canonical_workload(workload)
        self.reset(members)
        work = tempfile.mkdtemp(prefix="pgbench-", dir=log_dir)
        threads = max(1, min(clients, os.cpu_count() or 1))
        total_s = warmup_s + duration_s
        argv = [os.path.join(PG_BIN, "pgbench")] + self._conn() + [
            "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads),
            # One second more than warm-up + window: the window starts at the first
            # transaction, a little after pgbench's own clock, and must end before pgbench.
            "-T", str(math.ceil(total_s) + 1),
            "-f", os.path.join(HERE, SCRIPTS[workload]),
            "-l", "--log-prefix", os.path.join(work, "tx"),
            "-D", "members=%d" % members, "-D", "first_member=%d" % FIRST_MEMBER,
            "-D", "base=%d" % ID_BASE, "-D", "n=0",
            "-D", "earn_permille=%d" % round(earn_share * 1000),
            "-D", "fail_permille=%d" % round(redeem_fail_share * 1000),
            "-D", "post_permille=%d" % round(post_share * 1000),
            "-D", "overdraw=%d" % OVERDRAW,
        ]
        if rate:
            argv += ["-R", "%g" % rate]
        started = time.time()
        r = subprocess.run(argv + ["postgres"], capture_output=True, text=True, cwd=work)
        with open(os.path.join(work, "pgbench.out"), "w") as f:
            f.write(" ".join(argv) + "\n" + r.stdout + r.stderr)
        if r.returncode != 0:
            raise RuntimeError("pgbench %s failed (exit %d): %s" %
                               (workload, r.returncode, (r.stderr or r.stdout).strip()[-2000:]))
        txs, failed = parse_pgbench_logs(glob.glob(os.path.join(work, "tx*")))
        if rate:
            # Scheduled starts begin when pgbench starts its clients, about now-at-launch.
            t0 = min(t[0] for t in txs) if txs else started
            fig = open_loop_figures(txs, warmup_s, duration_s, t0)
        else:
            fig = window_figures(txs, warmup_s, duration_s)
        counts = self.psql_value(
            "SELECT (SELECT count(*) FROM ledger_entries WHERE transfer_id >= %d) || '|' || "
            "(SELECT count(*) FROM rejections) || '|' || "
            "(SELECT count(*) FROM pending_transfers WHERE state = 'posted') || '|' || "
            "(SELECT count(*) FROM pending_transfers WHERE state = 'voided')" % ID_BASE)
        entries, rejected, posted, voided = (int(x) for x in counts.split("|"))
        checks = self.check()
        conserved = all(ok for _, ok, _ in checks)
        if log_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        transfers_per_op = 1
        result = {
            "system": "postgresql",
            "workload": workload,
            "mode": "open" if rate else "single",
            "batch": 1,
            "clients": clients,
            "rate_offered": rate or 0,
            "seconds": duration_s,
            "operations": fig["count"],
            "transfers": fig["count"] * transfers_per_op,
            "completions": fig["count"] if workload == "two-phase" else 0,
            "transfers_per_s": fig["per_s"] * transfers_per_op,
            "events_per_s": fig["per_s"] * (2 if workload == "two-phase" else 1),
            "latency_ms": {"count": fig["latency_count"], "p50": fig["p50"], "p99": fig["p99"],
                           "p999": fig["p999"], "max": fig["max"]},
            # Open loop: the system did not keep up with the offered rate (under 90% of it).
            # pgbench never runs what is still behind schedule at the end, so the latencies
            # are lower bounds.
            "saturated": bool(rate) and fig["per_s"] < 0.9 * rate,
            "transactions_logged": len(txs),
            "transactions_failed": failed,
            "results": {"entries": entries, "rejected": rejected, "posted": posted,
                        "voided": voided},
            "planned_failures": None,
            "outcomes_ok": failed == 0,
            "conserved": conserved,
            "conservation": "; ".join("%s: %s (%s)" % (w, "ok" if ok else "FAILED", d)
                                      for w, ok, d in checks),
            "checks": [{"check": w, "ok": ok, "detail": d} for w, ok, d in checks],
        }
        return result


def install_signal_handlers():
    """SIGTERM and SIGINT unwind (finally blocks and atexit stop the cluster)."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def positive_list(text):
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected numbers separated by commas: %r" % text)
    if not values or any(v < 1 or v > 256 for v in values):
        raise argparse.ArgumentTypeError("client counts must be 1 to 256: %r" % text)
    return values


def positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not (v > 0 and v <= 3600):
        raise argparse.ArgumentTypeError("must be > 0 and <= 3600: %r" % text)
    return v


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", default="all",
                   help="uniform, hot, earn-redeem, two-phase (or w1..w4), or all")
    p.add_argument("--clients", type=positive_list, default=[1, 8, 64],
                   help="client counts, comma-separated (default 1,8,64)")
    p.add_argument("--accounts", type=int, default=100000, help="member accounts")
    p.add_argument("--duration", type=positive_float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--keep", action="store_true", help="keep the cluster's directory")
    args = p.parse_args(argv)
    if not 2 <= args.accounts <= 50000000:
        p.error("--accounts must be 2 to 50,000,000")
    if not 0 <= args.warmup <= 600:
        p.error("--warmup must be 0 to 600")
    try:
        workloads = WORKLOADS if args.workload == "all" else [canonical_workload(args.workload)]
    except ValueError as e:
        p.error(str(e))
    install_signal_handlers()
    runs = []
    ok = True
    with Cluster(keep=args.keep) as cluster:
        print("%-12s %8s %12s %9s %9s %9s %10s" % ("workload", "clients", "transfers/s",
                                                    "p50 ms", "p99 ms", "p999 ms", "conserved"))
        for w in workloads:
            for c in args.clients:
                log("postgres: %s, %d clients, %.1f s + %.1f s warm-up" %
                    (w, c, args.duration, args.warmup))
                r = cluster.run(w, c, args.accounts, args.duration, args.warmup)
                runs.append(r)
                ok = ok and r["conserved"] and r["outcomes_ok"]
                lat = r["latency_ms"]
                print("%-12s %8d %12.0f %9.2f %9.2f %9.2f %10s" %
                      (w, c, r["transfers_per_s"], lat["p50"], lat["p99"], lat["p999"],
                       "yes" if r["conserved"] else "NO"), flush=True)
                if not r["conserved"]:
                    log("postgres: conservation FAILED: %s" % r["conservation"])
        version = cluster.version
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"postgresql": version, "settings": SETTINGS, "runs": runs}, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
