#!/usr/bin/env python3
"""`make bench`: PointEx and the PostgreSQL baseline side by side, in one invocation.

For each repetition and each workload (W1 uniform, W2 hot, W3 earn/redeem, W4 two-phase), in
turn: PointEx embedded batched, PointEx one transfer per call at each client count, PointEx over
HTTP (pointexd, one transfer per request), then PostgreSQL (pgbench, one transfer per
transaction) at the same client counts; alternating per workload so that the machine's noise
falls on both systems alike. Then, once, open-loop runs at fixed arrival rates (latency under
load) for both. Every run starts on fresh state (a new data dir, a recreated schema) and is
checked (conservation, every result code); any failure is printed at once and makes the exit
status 1.

Writes results/<timestamp>/: results.json (every figure of every run, the medians, the ratios,
the machine's description and the options), table.txt (what is printed), SVG charts, logs/.

    python3 bench/run.py [--quick] [--repeat N] [--duration S] [--clients 1,8,64] ...
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "postgres"))

import pgbaseline  # noqa: E402
import report  # noqa: E402

ADMIN_KEY = "dev-admin-key-0123456789"  # config/pointexd.json's development admin key


def say(msg):
    print(msg, flush=True)


def int_list(text, lo, hi, what):
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("%s: numbers separated by commas, not %r" % (what, text))
    if not values or any(v < lo or v > hi for v in values):
        raise argparse.ArgumentTypeError("%s must be %d to %d: %r" % (what, lo, hi, text))
    return values


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="PointEx vs PostgreSQL, W1-W4, one table (make bench)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build"),
                   help="where pointex-bench, pointexd and pointex are")
    p.add_argument("--results", default=os.path.join(ROOT, "results"),
                   help="results/<timestamp>/ goes here")
    p.add_argument("--quick", action="store_true",
                   help="smoke check in under two minutes: 10,000 accounts, 1.5 s runs, 64 "
                        "clients, one repetition, no HTTP and no open loop (unless given)")
    p.add_argument("--repeat", type=int, help="repetitions (medians are reported) [3; quick 1]")
    p.add_argument("--duration", type=float, help="measured seconds per run [5; quick 1.5]")
    p.add_argument("--warmup", type=float, help="unmeasured seconds before [1; quick 0.5]")
    p.add_argument("--accounts", type=int, help="member accounts [100000; quick 10000]")
    p.add_argument("--clients", help="one-at-a-time client counts, both systems [1,8,64; quick 64]")
    p.add_argument("--batch", type=int, default=8190, help="PointEx batched: transfers per batch")
    p.add_argument("--batch-clients",
                   help="PointEx batched: batches in flight, comma-separated; the ratios take the "
                        "best, as they take PostgreSQL's best client count (a deeper pipeline "
                        "gives each account actor more to do per turn: W1 and W3 gain, W2's one "
                        "hot actor does not) [4,32]")
    p.add_argument("--workloads", default="all",
                   help="comma-separated: uniform, hot, earn-redeem, two-phase (or w1..w4), all")
    p.add_argument("--http-connections", type=int,
                   help="PointEx over HTTP with this many connections (0: none) [64; quick 0]")
    p.add_argument("--http-batch", type=int,
                   help="PointEx over HTTP, batched: transfers per request (0: none) [1000; "
                        "quick 0]")
    p.add_argument("--http-batch-connections", type=int, default=8,
                   help="PointEx over HTTP, batched: connections")
    p.add_argument("--rates", help="open loop: offered transfers/s, comma-separated (empty: "
                                   "none) [200,1000,5000; quick none]")
    p.add_argument("--open-workloads", default="uniform,hot", help="workloads run open loop")
    p.add_argument("--durability", default="sync", choices=["sync", "async"],
                   help="PointEx durability (PostgreSQL always commits durably)")
    p.add_argument("--no-postgres", action="store_true", help="PointEx only")
    p.add_argument("--verify", action="store_true",
                   help="also audit each PointEx data dir with Engine::verify (slow: replays it)")
    a = p.parse_args(argv)
    q = a.quick
    a.repeat = a.repeat if a.repeat is not None else (1 if q else 3)
    a.duration = a.duration if a.duration is not None else (1.5 if q else 5.0)
    a.warmup = a.warmup if a.warmup is not None else (0.5 if q else 1.0)
    a.accounts = a.accounts if a.accounts is not None else (10000 if q else 100000)
    a.http_connections = (a.http_connections if a.http_connections is not None
                          else (0 if q else 64))
    a.http_batch = a.http_batch if a.http_batch is not None else (0 if q else 1000)
    try:
        a.clients = int_list(a.clients if a.clients else ("64" if q else "1,8,64"), 1, 256,
                             "--clients")
        a.batch_clients = int_list(a.batch_clients if a.batch_clients else "4,32", 1, 4096,
                                   "--batch-clients")
        rates = a.rates if a.rates is not None else ("" if q else "200,1000,5000")
        a.rates = int_list(rates, 1, 10000000, "--rates") if rates.strip() else []
        a.workloads = workload_list(a.workloads)
        a.open_workloads = workload_list(a.open_workloads)
    except (argparse.ArgumentTypeError, ValueError) as e:
        p.error(str(e))
    checks = [(1 <= a.repeat <= 20, "--repeat must be 1 to 20"),
              (0.1 <= a.duration <= 3600, "--duration must be 0.1 to 3600"),
              (0 <= a.warmup <= 600, "--warmup must be 0 to 600"),
              (2 <= a.accounts <= 50000000, "--accounts must be 2 to 50,000,000"),
              (1 <= a.batch <= 8190, "--batch must be 1 to 8190"),
              (0 <= a.http_connections <= 4096, "--http-connections must be 0 to 4096"),
              (0 <= a.http_batch <= 8190, "--http-batch must be 0 to 8190"),
              (1 <= a.http_batch_connections <= 4096,
               "--http-batch-connections must be 1 to 4096")]
    for ok, msg in checks:
        if not ok:
            p.error(msg)
    for prog in ("pointex-bench", "pointexd", "pointex"):
        if not os.access(os.path.join(a.build_dir, prog), os.X_OK):
            p.error("%s/%s is missing: build first (make build)" % (a.build_dir, prog))
    return a


def workload_list(text):
    if text.strip() == "all":
        return list(pgbaseline.WORKLOADS)
    out = []
    for name in text.split(","):
        if name.strip():
            out.append(pgbaseline.canonical_workload(name.strip()))
    if not out:
        raise ValueError("no workload given")
    return out


# -- the machine ---------------------------------------------------------------------------------

def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def dpkg_version(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                       text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def machine_description(build_dir):
    cpu = re.search(r"^model name\s*:\s*(.*)$", read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read("/proc/meminfo"), re.M)
    osr = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', read("/etc/os-release"), re.M)
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    cache = read(os.path.join(build_dir, "CMakeCache.txt"))
    build_type = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", cache, re.M)
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu.group(1).strip() if cpu else platform.processor(),
        "memory_gib": round(int(mem.group(1)) / 1048576, 1) if mem else None,
        "kernel": platform.release(),
        "os": osr.group(1) if osr else platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
        "versions": {
            "pointex_git": git,
            "build_type": build_type.group(1) if build_type else None,
            "rocksdb": dpkg_version("librocksdb-dev"),
            "caf": dpkg_version("libcaf-dev"),
            "postgresql": dpkg_version("postgresql-15"),
            "boost": dpkg_version("libboost-dev"),
            "python": platform.python_version(),
        },
        "temp_dir": tempfile.gettempdir(),
    }


# -- PointEx runs --------------------------------------------------------------------------------

class Runner:
    def __init__(self, args, outdir):
        self.a = args
        self.out = outdir
        self.logs = os.path.join(outdir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.bin = os.path.join(args.build_dir, "pointex-bench")
        self.failures = []

    def _bench(self, name, extra, workload):
        """Runs pointex-bench once; returns its run as a dict (or a failed stub)."""
        json_path = os.path.join(self.logs, name + ".json")
        argv = [self.bin, "--workload", workload, "--accounts", str(self.a.accounts),
                "--duration", str(self.a.duration), "--warmup", str(self.a.warmup),
                "--durability", self.a.durability, "--runs-only", "--json", json_path] + extra
        if self.a.verify:
            argv.append("--verify")
        with open(os.path.join(self.logs, name + ".log"), "w") as logf:
            logf.write(" ".join(argv) + "\n")
            logf.flush()
            rc = subprocess.run(argv, stdout=logf, stderr=subprocess.STDOUT).returncode
        return self._read(json_path, rc, name)

    def _read(self, json_path, rc, name):
        try:
            with open(json_path) as f:
                data = json.load(f)
            run = data["runs"][0]
        except (OSError, ValueError, KeyError, IndexError):
            run = {"transfers_per_s": 0.0, "latency_ms": {"p50": 0, "p99": 0, "p999": 0},
                   "conserved": False, "outcomes_ok": False}
            data = {}
        if rc != 0 or not data.get("ok", False):
            run["conserved"] = run.get("conserved", False) and rc == 0
            run["outcomes_ok"] = False
            self.fail("%s: pointex-bench exited %d (log: %s)" % (
                name, rc, os.path.join(self.logs, name + ".log")))
        return run

    def fail(self, msg):
        self.failures.append(msg)
        say("  FAILED: " + msg)

    def pointex_batched(self, w, clients):
        run = self._bench("pointex-%s-batched-c%d-r%d" % (w, clients, self.rep),
                          ["--batch", str(self.a.batch), "--clients", str(clients)], w)
        run.update(system="pointex", mode="batched")
        return run

    def pointex_single(self, w, clients):
        run = self._bench("pointex-%s-single-c%d-r%d" % (w, clients, self.rep),
                          ["--mode", "single", "--clients", str(clients)], w)
        run.update(system="pointex", mode="single")
        return run

    def pointex_open(self, w, rate):
        run = self._bench("pointex-%s-open-%d" % (w, rate),
                          ["--rate", str(rate), "--batch", "1"], w)
        run.update(system="pointex", mode="open")
        return run

    def pointex_http(self, w, connections, batch):
        """pointexd on a fresh data dir and a free loopback port; pointex-bench --http against
        it (`batch` transfers per request); then SIGTERM, and `pointex verify` audits the
        closed data dir."""
        name = "pointex-%s-http-c%d-b%d-r%d" % (w, connections, batch, self.rep)
        data = tempfile.mkdtemp(prefix="pointex-http-")
        port_file = os.path.join(data, "port")
        logf = open(os.path.join(self.logs, name + ".log"), "w")
        daemon = subprocess.Popen(
            [os.path.join(self.a.build_dir, "pointexd"), "--config",
             os.path.join(ROOT, "config", "pointexd.json"), "--data-dir",
             os.path.join(data, "data"), "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--durability", self.a.durability, "--log-level", "warn"],
            stdout=logf, stderr=subprocess.STDOUT)
        try:
            port = None
            deadline = time.time() + 60
            while time.time() < deadline and daemon.poll() is None:
                text = read(port_file).strip()
                if text.isdigit():
                    port = int(text)
                    break
                time.sleep(0.05)
            if port is None:
                self.fail("%s: pointexd did not start" % name)
                return None
            json_path = os.path.join(self.logs, name + ".json")
            argv = [self.bin, "--http", "127.0.0.1:%d" % port, "--key", ADMIN_KEY,
                    "--connections", str(connections), "--batch", str(batch),
                    "--workload", w, "--accounts", str(self.a.accounts), "--duration",
                    str(self.a.duration), "--warmup", str(self.a.warmup), "--json", json_path]
            logf.write(" ".join(argv) + "\n")
            logf.flush()
            rc = subprocess.run(argv, stdout=logf, stderr=subprocess.STDOUT).returncode
            run = self._read(json_path, rc, name)
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
        verify = subprocess.run([os.path.join(self.a.build_dir, "pointex"), "verify",
                                 "--data-dir", os.path.join(data, "data")],
                                stdout=logf, stderr=subprocess.STDOUT).returncode
        logf.close()
        shutil.rmtree(data, ignore_errors=True)
        if daemon.returncode != 0:
            self.fail("%s: pointexd exited %d" % (name, daemon.returncode))
        if verify != 0:
            run["conserved"] = False
            self.fail("%s: pointex verify found problems (exit %d)" % (name, verify))
        run["verified"] = verify == 0
        run.update(system="pointex", mode="http")
        return run

    def postgres(self, cluster, w, clients, rate=None):
        name = "postgres-%s-%s-r%d" % (w, ("open-%d" % rate) if rate else "c%d" % clients,
                                       self.rep)
        try:
            run = cluster.run(w, clients, self.a.accounts, self.a.duration, self.a.warmup,
                              rate=rate, log_dir=self.logs)
        except RuntimeError as e:
            self.fail("%s: %s" % (name, e))
            return {"system": "postgresql", "mode": "open" if rate else "single",
                    "workload": w, "clients": clients, "batch": 1, "rate_offered": rate or 0,
                    "transfers_per_s": 0.0, "latency_ms": {"p50": 0, "p99": 0, "p999": 0},
                    "conserved": False, "outcomes_ok": False}
        if not run["conserved"]:
            self.fail("%s: conservation FAILED: %s" % (name, run["conservation"]))
        if not run["outcomes_ok"]:
            self.fail("%s: %d transactions failed" % (name, run["transactions_failed"]))
        return run


def describe(run):
    lat = run.get("latency_ms", {})
    ok = run.get("conserved") and run.get("outcomes_ok", True)
    return "%s/s, p50 %.2f / p99 %.2f / p999 %.2f ms, %s" % (
        report.thousands(run.get("transfers_per_s", 0)), lat.get("p50", 0), lat.get("p99", 0),
        lat.get("p999", 0), "checks ok" if ok else "CHECKS FAILED")


def plan(a):
    """The runs, in order: (label, kind, workload, clients or rate, repetition)."""
    steps = []
    for rep in range(a.repeat):
        for w in a.workloads:
            for c in a.batch_clients:
                steps.append(("pointex batched %dx%d" % (c, a.batch), "batched", w, c, rep))
            for c in a.clients:
                steps.append(("pointex single, %d clients" % c, "single", w, c, rep))
            if a.http_connections:
                steps.append(("pointex HTTP, %d connections" % a.http_connections, "http", w,
                              (a.http_connections, 1), rep))
            if a.http_batch:
                steps.append(("pointex HTTP, %d connections x %d per request" % (
                    a.http_batch_connections, a.http_batch), "http", w,
                    (a.http_batch_connections, a.http_batch), rep))
            if not a.no_postgres:
                for c in a.clients:
                    steps.append(("postgresql, %d clients" % c, "pg", w, c, rep))
    for w in a.open_workloads if a.rates else []:
        for r in a.rates:
            steps.append(("pointex open loop %d/s" % r, "open", w, r, 0))
            if not a.no_postgres:
                steps.append(("postgresql open loop %d/s" % r, "pg-open", w, r, 0))
    return steps


def main(argv=None):
    a = parse_args(argv)
    pgbaseline.install_signal_handlers()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(a.results, stamp)
    os.makedirs(outdir, exist_ok=True)
    started = time.time()
    machine = machine_description(a.build_dir)
    steps = plan(a)
    say("bench: %d runs (%s), %d accounts, %.1f s + %.1f s warm-up each; results in %s" % (
        len(steps), ", ".join(a.workloads), a.accounts, a.duration, a.warmup, outdir))
    say("machine: %d cores, %s GiB, %s, kernel %s, load %.2f" % (
        machine["cores"], machine["memory_gib"], machine["cpu_model"], machine["kernel"],
        machine["load_average_at_start"][0]))
    runner = Runner(a, outdir)
    runs = []
    cluster = None
    try:
        if not a.no_postgres:
            cluster = pgbaseline.Cluster()
            cluster.start()
            machine["versions"]["postgresql_server"] = cluster.version
        for i, (title, kind, w, n, rep) in enumerate(steps):
            runner.rep = rep
            say("[%d/%d] %s: %s (repetition %d, %.0f s so far)" % (
                i + 1, len(steps), report.WORKLOAD_TITLE[w], title, rep + 1,
                time.time() - started))
            if kind == "batched":
                run = runner.pointex_batched(w, n)
            elif kind == "single":
                run = runner.pointex_single(w, n)
            elif kind == "http":
                run = runner.pointex_http(w, *n)
            elif kind == "open":
                run = runner.pointex_open(w, n)
            elif kind == "pg":
                run = runner.postgres(cluster, w, n)
            else:
                run = runner.postgres(cluster, w, max(1, max(a.clients)), rate=n)
            if run is None:
                continue
            run["workload"] = w
            run["repeat"] = rep
            runs.append(run)
            say("        %s" % describe(run))
    finally:
        if cluster is not None:
            settings = {k: cluster.setting(k) for k in ("fsync", "synchronous_commit",
                                                        "full_page_writes", "shared_buffers",
                                                        "max_wal_size")} \
                if cluster.started else {}
            cluster.stop()
            machine["postgresql_settings"] = settings
    machine["load_average_at_end"] = list(os.getloadavg())
    summary = report.summarize(runs)
    ratios = report.compute_ratios(summary)
    table = report.format_table(summary, ratios)
    ok = not runner.failures and all(s["conserved"] and s["outcomes_ok"] for s in summary)
    results = {
        "schema": 1,
        "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "wall_s": round(time.time() - started, 1),
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + (argv or sys.argv[1:])),
        "machine": machine,
        "options": {k: v for k, v in vars(a).items()},
        "definitions": {
            "transfers_per_s": "transfers answered inside the measured window / its length; W4: "
                               "two-phase transfers (pending + its post or void, two commits)",
            "latency": "per operation from its send (open loop: its scheduled time) until every "
                       "ok in it is durable; PointEx batched: per batch; W4: pending through "
                       "post/void",
            "median": "each figure is the median over the repetitions",
            "ratios": "PointEx / PostgreSQL at PostgreSQL's best client count",
        },
        "runs": runs,
        "summary": summary,
        "ratios": ratios,
        "failures": runner.failures,
        "ok": ok,
    }
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(outdir, "table.txt"), "w") as f:
        f.write(table)
    charts = report.write_charts(summary, outdir)
    say("")
    sys.stdout.write(table)
    say("")
    for c in charts:
        say("chart: %s" % os.path.relpath(c, ROOT))
    say("results: %s (%.0f s)" % (os.path.relpath(os.path.join(outdir, "results.json"), ROOT),
                                  time.time() - started))
    if not ok:
        say("bench: FAILED: %d problem(s):" % len(runner.failures))
        for f in runner.failures:
            say("  " + f)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
