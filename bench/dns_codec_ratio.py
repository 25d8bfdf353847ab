#!/usr/bin/env python3
"""Runs dnsproxy-bench-dns_codec several times and prints codec/ldns CPU-time ratios.

On a shared machine one run's medians can swing by 20 %; the ratio taken inside each run
(codec and ldns interleaved in one process) is far steadier. The benchmark is pinned to one CPU
(the lowest this script may use) so that both sides of a ratio always run on the same core: on
the shared VM one core was seen running the same code up to 65 % slower for minutes, and a run
that migrated between the two measured nonsense. Usage, from the repository root after a Release
build: bench/dns_codec_ratio.py [runs] (default 5).
"""
import json
import os
import statistics
import subprocess
import sys

BENCH = "build/bin/dnsproxy-bench-dns_codec"


def medians():
    out = subprocess.run(
        [BENCH, "--benchmark_repetitions=9", "--benchmark_enable_random_interleaving=true",
         "--benchmark_report_aggregates_only=true", "--benchmark_format=json"],
        capture_output=True, text=True, check=True).stdout
    return {b["run_name"]: b["cpu_time"] for b in json.loads(out)["benchmarks"]
            if b.get("aggregate_name") == "median"}


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # inherited by the benchmark process
    print(f"pinned to CPU {cpu}")
    series = {}
    for _ in range(runs):
        m = medians()
        for packet in ("Query", "Response"):
            codec, ldns = m[f"BM_Codec{packet}"], m[f"BM_Ldns{packet}"]
            series.setdefault(f"codec {packet.lower()} ns", []).append(codec)
            series.setdefault(f"ldns {packet.lower()} ns", []).append(ldns)
            series.setdefault(f"{packet.lower()} ldns/codec", []).append(ldns / codec)
    for name, values in series.items():
        print(f"{name:22} median {statistics.median(values):8.1f}"
              f"  (min {min(values):.1f}, max {max(values):.1f}, {runs} runs)")


if __name__ == "__main__":
    main()
