#!/usr/bin/env python3
"""The bench report: medians, the table, the ratios PointEx / PostgreSQL, and the charts.

    python3 bench/report.py results/<timestamp>/results.json   # table again, charts again

bench/run.py (`make bench`) calls summarize(), compute_ratios(), format_table() and
write_charts() on the runs it measured. Python standard library only; the charts are SVG drawn
by gnuplot (Debian package gnuplot-nox) and skipped, with a warning, where it is missing.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys

WORKLOAD_ORDER = ["uniform", "hot", "earn-redeem", "two-phase"]
WORKLOAD_TITLE = {
    "uniform": "W1 uniform",
    "hot": "W2 hot account",
    "earn-redeem": "W3 earn/redeem",
    "two-phase": "W4 two-phase",
}
# Targets of issue 5 (ratios to PostgreSQL at its best client count, embedded batched).
RATIO_TARGETS = {"uniform": 75.0, "hot": 175.0}


def key_of(run):
    return (run["system"], run["mode"], run["workload"], int(run.get("clients") or 0),
            int(run.get("batch") or 1), float(run.get("rate_offered") or 0))


def summarize(runs):
    """Groups the runs of one configuration (repetitions) and takes medians of each figure.

    Returns a list of dicts: system, mode, workload, clients, batch, rate_offered, repeats,
    transfers_per_s (median), every_transfers_per_s (each repetition), p50/p99/p999 (medians of
    the repetitions' percentiles), failed (median), conserved and outcomes_ok (all runs)."""
    groups = {}
    for r in runs:
        groups.setdefault(key_of(r), []).append(r)
    out = []
    for (system, mode, workload, clients, batch, rate), rs in groups.items():
        lat = lambda q: statistics.median(r["latency_ms"][q] for r in rs)
        out.append({
            "system": system, "mode": mode, "workload": workload, "clients": clients,
            "batch": batch, "rate_offered": rate, "repeats": len(rs),
            "transfers_per_s": statistics.median(r["transfers_per_s"] for r in rs),
            "every_transfers_per_s": [r["transfers_per_s"] for r in rs],
            "p50": lat("p50"), "p99": lat("p99"), "p999": lat("p999"),
            "failed": statistics.median(failed_of(r) for r in rs),
            "saturated": any(saturated(r) for r in rs),
            "conserved": all(r.get("conserved") for r in rs),
            "outcomes_ok": all(r.get("outcomes_ok", True) for r in rs),
        })
    order = {w: i for i, w in enumerate(WORKLOAD_ORDER)}
    system_order = {("pointex", "batched"): 0, ("pointex", "single"): 1, ("pointex", "http"): 2,
                    ("postgresql", "single"): 3, ("pointex", "open"): 4,
                    ("postgresql", "open"): 5}
    out.sort(key=lambda s: (order.get(s["workload"], 99),
                            system_order.get((s["system"], s["mode"]), 9), s["clients"],
                            s["rate_offered"]))
    return out


def saturated(run):
    """Open loop: fewer than 90% of the offered transfers/s answered (latency grows without
    bound with the run's length; pgbench's figures are then lower bounds)."""
    rate = float(run.get("rate_offered") or 0)
    return rate > 0 and (run.get("saturated") or run["transfers_per_s"] < 0.9 * rate)


def failed_of(run):
    """Refused transfers of a run (W3's overdrawing redeems, or anything unexpected)."""
    if run["system"] == "postgresql":
        return (run.get("results") or {}).get("rejected", 0)
    n = 0
    for kind, by_result in (run.get("results") or {}).items():
        for result, count in by_result.items():
            if result != "ok":
                n += count
    return n


def compute_ratios(summary):
    """Per workload: PostgreSQL at its best client count (closed loop), and PointEx batched,
    PointEx one-at-a-time (its best, and at each client count PostgreSQL ran) against it."""
    ratios = []
    for w in WORKLOAD_ORDER:
        pg = [s for s in summary if s["workload"] == w and s["system"] == "postgresql"
              and s["mode"] == "single"]
        if not pg:
            continue
        best = max(pg, key=lambda s: s["transfers_per_s"])
        if best["transfers_per_s"] <= 0:
            continue
        entry = {"workload": w, "postgresql_best_clients": best["clients"],
                 "postgresql_best_per_s": best["transfers_per_s"]}

        def ratio(s):
            return s["transfers_per_s"] / best["transfers_per_s"]
        batched = [s for s in summary if s["workload"] == w and s["system"] == "pointex"
                   and s["mode"] == "batched"]
        if batched:
            # Its best depth, as PostgreSQL at its best client count.
            b = max(batched, key=lambda s: s["transfers_per_s"])
            entry["batched_best_clients"] = b["clients"]
            entry["batched_per_s"] = b["transfers_per_s"]
            entry["batched_ratio"] = ratio(b)
        single = [s for s in summary if s["workload"] == w and s["system"] == "pointex"
                  and s["mode"] == "single"]
        if single:
            b = max(single, key=lambda s: s["transfers_per_s"])
            entry["single_best_clients"] = b["clients"]
            entry["single_best_per_s"] = b["transfers_per_s"]
            entry["single_best_ratio"] = ratio(b)
            same = {}
            for s in single:
                p = [x for x in pg if x["clients"] == s["clients"]]
                if p and p[0]["transfers_per_s"] > 0:
                    same[str(s["clients"])] = s["transfers_per_s"] / p[0]["transfers_per_s"]
            entry["single_same_clients_ratio"] = same
        http = [s for s in summary if s["workload"] == w and s["system"] == "pointex"
                and s["mode"] == "http"]
        if http:
            b = max(http, key=lambda s: s["transfers_per_s"])
            entry["http_per_s"] = b["transfers_per_s"]
            entry["http_ratio"] = ratio(b)
        if w in RATIO_TARGETS:
            entry["batched_ratio_target"] = RATIO_TARGETS[w]
        ratios.append(entry)
    return ratios


def label(s):
    if s["system"] == "postgresql":
        return "PostgreSQL" + (" open loop" if s["mode"] == "open" else "")
    return {"batched": "PointEx batched", "single": "PointEx single", "http": "PointEx HTTP",
            "open": "PointEx open loop"}.get(s["mode"], "PointEx " + s["mode"])


def load_of(s):
    if s["mode"] == "open":
        return "%s/s" % thousands(s["rate_offered"])
    if s["mode"] == "batched":
        return "%dx%d" % (s["clients"], s["batch"])
    if s["mode"] == "http":
        return "%d conn" % s["clients"] + ("" if s["batch"] == 1 else " x%d" % s["batch"])
    return "%d" % s["clients"]


def thousands(x):
    return "{:,.0f}".format(x)


def format_table(summary, ratios):
    lines = []
    head = "%-20s %-12s %12s %9s %9s %9s %8s  %s" % ("system", "load", "transfers/s", "p50 ms",
                                                      "p99 ms", "p999 ms", "failed", "checks")
    for w in WORKLOAD_ORDER:
        rows = [s for s in summary if s["workload"] == w]
        if not rows:
            continue
        unit = " (one transfer = pending + post/void, two commits)" if w == "two-phase" else ""
        lines.append("")
        lines.append("%s%s" % (WORKLOAD_TITLE[w], unit))
        lines.append(head)
        for s in rows:
            checks = "ok" if s["conserved"] and s["outcomes_ok"] else "FAILED"
            if s.get("saturated"):
                checks += ", saturated (did not keep up: latencies are lower bounds)"
            reps = "" if s["repeats"] == 1 else "  (median of %d: %s)" % (
                s["repeats"], ", ".join(thousands(x) for x in s["every_transfers_per_s"]))
            lines.append("%-20s %-12s %12s %9.2f %9.2f %9.2f %8s  %s%s" % (
                label(s), load_of(s), thousands(s["transfers_per_s"]), s["p50"], s["p99"],
                s["p999"], thousands(s["failed"]), checks, reps))
        for r in ratios:
            if r["workload"] != w:
                continue
            parts = []
            if "batched_ratio" in r:
                t = r.get("batched_ratio_target")
                parts.append("batched%s %.1fx%s" % (
                    " (%d in flight)" % r["batched_best_clients"]
                    if "batched_best_clients" in r else "", r["batched_ratio"],
                    "" if t is None else " (target >= %gx: %s)" % (
                        t, "met" if r["batched_ratio"] >= t else "missed")))
            if "single_best_ratio" in r:
                parts.append("single best (%d clients) %.1fx" % (r["single_best_clients"],
                                                                 r["single_best_ratio"]))
            if r.get("single_same_clients_ratio"):
                parts.append("single at the same clients " + ", ".join(
                    "%s: %.1fx" % kv for kv in sorted(r["single_same_clients_ratio"].items(),
                                                       key=lambda kv: int(kv[0]))))
            if "http_ratio" in r:
                parts.append("HTTP %.1fx" % r["http_ratio"])
            lines.append("PointEx / PostgreSQL at its best client count (%d clients, %s/s): %s" %
                         (r["postgresql_best_clients"], thousands(r["postgresql_best_per_s"]),
                          "; ".join(parts)))
    return "\n".join(lines).lstrip("\n") + "\n"


# -- charts ------------------------------------------------------------------------------------

def _gnuplot(script, outdir, name):
    path = os.path.join(outdir, name + ".gp")
    with open(path, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", path], capture_output=True, text=True, cwd=outdir)
    if r.returncode != 0:
        print("report: gnuplot %s failed: %s" % (name, r.stderr.strip()), file=sys.stderr)
        return None
    return os.path.join(outdir, name + ".svg")


def write_charts(summary, outdir):
    """Writes SVG charts into outdir (with their .dat and .gp sources); returns their paths."""
    if shutil.which("gnuplot") is None:
        print("report: gnuplot is missing (scripts/setup.sh bench installs gnuplot-nox): no "
              "charts", file=sys.stderr)
        return []
    charts = []
    # 1. Throughput by workload and system (best load of each system), log scale.
    columns = [("PointEx batched", lambda s: s["system"] == "pointex" and s["mode"] == "batched"),
               ("PointEx single", lambda s: s["system"] == "pointex" and s["mode"] == "single"),
               ("PointEx HTTP", lambda s: s["system"] == "pointex" and s["mode"] == "http"),
               ("PostgreSQL", lambda s: s["system"] == "postgresql" and s["mode"] == "single")]
    present = [(n, f) for n, f in columns if any(f(s) for s in summary)]
    rows = []
    for w in WORKLOAD_ORDER:
        vals = []
        for _, f in present:
            c = [s["transfers_per_s"] for s in summary if s["workload"] == w and f(s)]
            vals.append(max(c) if c else float("nan"))
        if any(v == v for v in vals):
            rows.append((WORKLOAD_TITLE[w].split(" ")[0], vals))
    if rows and present:
        with open(os.path.join(outdir, "throughput.dat"), "w") as f:
            f.write("workload " + " ".join('"%s"' % n for n, _ in present) + "\n")
            for name, vals in rows:
                f.write(name + " " + " ".join("%.1f" % v if v == v else "NaN" for v in vals)
                        + "\n")
        plots = ", ".join("'throughput.dat' using %d:xtic(1) title columnheader(%d)" % (i + 2,
                                                                                      i + 2)
                          for i in range(len(present)))
        script = """set terminal svg size 900,520 dynamic background rgb 'white'
set output 'throughput.svg'
set title 'Throughput by workload and system (best load of each; log scale)'
set ylabel 'transfers/s'
set logscale y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top right
set grid ytics
set yrange [1:*]
plot %s
""" % plots
        c = _gnuplot(script, outdir, "throughput")
        if c:
            charts.append(c)
    # 2. Latency percentiles vs clients, one panel per workload.
    panels = []
    for w in WORKLOAD_ORDER:
        series = []
        for sysname, mode, title in (("pointex", "single", "PointEx"),
                                     ("postgresql", "single", "PostgreSQL")):
            pts = sorted((s["clients"], s["p50"], s["p99"], s["p999"]) for s in summary
                         if s["workload"] == w and s["system"] == sysname and s["mode"] == mode)
            if pts:
                fname = "latency_%s_%s.dat" % (w, sysname)
                with open(os.path.join(outdir, fname), "w") as f:
                    f.write("# clients p50_ms p99_ms p999_ms\n")
                    for p in pts:
                        f.write("%d %.4f %.4f %.4f\n" % p)
                series.append((fname, title))
        if series:
            panels.append((w, series))
    if panels:
        body = ""
        for w, series in panels:
            plots = []
            for fname, title in series:
                dash = "" if title == "PointEx" else " dt 2"
                for col, q in ((2, "p50"), (3, "p99"), (4, "p999")):
                    plots.append("'%s' using 1:%d with linespoints lw 2%s title '%s %s'" %
                                 (fname, col, dash, title, q))
            body += "set title '%s'\nplot %s\n" % (WORKLOAD_TITLE[w], ", ".join(plots))
        script = """set terminal svg size 1100,800 dynamic background rgb 'white'
set output 'latency_vs_clients.svg'
set multiplot layout 2,2 title 'Latency percentiles vs clients (one transfer per call, closed loop)'
set logscale xy
set xlabel 'clients'
set ylabel 'ms'
set grid
set key top left font ',8'
%sunset multiplot
""" % body
        c = _gnuplot(script, outdir, "latency_vs_clients")
        if c:
            charts.append(c)
    # 3. Open loop: latency vs offered rate.
    open_runs = [s for s in summary if s["mode"] == "open"]
    if open_runs:
        plots = []
        for w in WORKLOAD_ORDER:
            for sysname, title in (("pointex", "PointEx"), ("postgresql", "PostgreSQL")):
                pts = sorted((s["rate_offered"], s["p50"], s["p99"]) for s in open_runs
                             if s["workload"] == w and s["system"] == sysname)
                if not pts:
                    continue
                fname = "open_%s_%s.dat" % (w, sysname)
                with open(os.path.join(outdir, fname), "w") as f:
                    f.write("# offered_per_s p50_ms p99_ms\n")
                    for p in pts:
                        f.write("%.1f %.4f %.4f\n" % p)
                dash = "" if sysname == "pointex" else " dt 2"
                short = WORKLOAD_TITLE[w].split(" ")[0]
                plots.append("'%s' using 1:3 with linespoints lw 2%s title '%s %s p99'" %
                             (fname, dash, title, short))
                plots.append("'%s' using 1:2 with linespoints lw 1%s title '%s %s p50'" %
                             (fname, dash, title, short))
        script = """set terminal svg size 900,560 dynamic background rgb 'white'
set output 'open_loop.svg'
set title 'Latency under load: open loop at a fixed arrival rate (latency from the scheduled time)'
set logscale xy
set xlabel 'offered transfers/s'
set ylabel 'ms'
set grid
set key top left font ',9'
plot %s
""" % ", ".join(plots)
        c = _gnuplot(script, outdir, "open_loop")
        if c:
            charts.append(c)
    return charts


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        print("usage: report.py RESULTS.json   (re-prints the table, re-draws the charts beside "
              "it)", file=sys.stderr)
        return 2
    try:
        with open(argv[1]) as f:
            data = json.load(f)
        runs = data["runs"]
    except (OSError, ValueError, KeyError) as e:
        print("report: cannot read %s: %s" % (argv[1], e), file=sys.stderr)
        return 2
    summary = summarize(runs)
    ratios = compute_ratios(summary)
    sys.stdout.write(format_table(summary, ratios))
    for c in write_charts(summary, os.path.dirname(os.path.abspath(argv[1]))):
        print("chart: %s" % c)
    return 0 if all(s["conserved"] and s["outcomes_ok"] for s in summary) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
