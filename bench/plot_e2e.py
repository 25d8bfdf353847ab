#!/usr/bin/python3
"""Draws latency against offered load for each path of an e2e benchmark run.

usage: bench/plot_e2e.py RESULTS.json OUT.png

Reads the JSON dnsproxy-e2e-bench writes (the `latency_vs_load` sweep of the default layout) and
plots p50 (solid) and p99 (dashed) latency in microseconds, log scale, against the offered rate.
A point where the load generator could not keep the rate, or queries were lost, is drawn hollow.
Needs Debian's python3-matplotlib (hence /usr/bin/python3, not a virtualenv's).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display: write the file only
import matplotlib.pyplot as plt  # noqa: E402


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        results = json.load(f)
    curves = results.get("default", {}).get("latency_vs_load", {})
    if not curves:
        print(f"{argv[1]}: no latency_vs_load sweep in the default layout", file=sys.stderr)
        return 1
    fig, ax = plt.subplots(figsize=(8, 5))
    for path, points in curves.items():
        if not points:
            continue
        rates = [p["offered_qps"] for p in points]
        color = None
        for key, style in (("p50_us", "-"), ("p99_us", "--")):
            line = ax.plot(rates, [p[key] for p in points], style, marker="o", color=color,
                           label=f"{path} {key[:3]}")[0]
            color = line.get_color()  # one colour per path
            for p in points:
                if not p["rate_reached"] or p["lost"] > 0:
                    ax.plot([p["offered_qps"]], [p[key]], marker="o", markerfacecolor="white",
                            color=color)
    ax.set_xlabel("offered load (queries/s, open loop)")
    ax.set_ylabel("latency (us)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"dnsproxy e2e: latency vs offered load "
                 f"(load average {results.get('load_average_start', '?')})")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(argv[2], dpi=110)
    print(f"wrote {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
