"""Benchmark ``run --watch``: write to a template -> the app receives the reload signal.

Runs the runtime as PID 1 of a fresh PID namespace (``unshare``) with an app
that records ``time.monotonic()`` on every HUP; each round writes new
content to the template, noting ``time.monotonic()`` just before the write,
and waits for the matching HUP.  Latency = receipt - write, which includes
the debounce quiet period and the render step (a fork of PID 1).
Also records PID 1's VmRSS and its context switches over an idle window (both via psutil).
Uses the real ``entrypoint run --watch`` when it supports ``--watch``,
otherwise the loop-mimicking driver from ``tests/test_watch.py``.
Prints a markdown table and writes ``bench/results/watch.json``.

    .venv/bin/python bench/bench_watch.py [--rounds N] [--quiet SECONDS ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from test_watch import Rig, run_supports_watch, wait_for  # noqa: E402

from tests.pid1_helpers import ctx_switches, vm_rss_kib  # noqa: E402

RESULTS = REPO / "bench" / "results" / "watch.json"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(runtime: str, quiet: float, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rig = Rig(tmp, runtime)
        src, dest = tmp / "app.conf.template", tmp / "app.conf"
        src.write_text("port=${PORT}\nround=-1\n")
        try:
            rig.start([f"{src}:{dest}"], dest, "--watch-quiet", str(quiet))
            pid1 = rig.pid1()
            latencies: list[float] = []
            for i in range(rounds):
                written = time.monotonic()
                src.write_text(f"port=${{PORT}}\nround={i}\n")
                wait_for(lambda n=i: rig.count("HUP") == n + 1, 10, f"HUP {i}")
                latencies.append(float(rig.lines("HUP")[i][1]) - written)
            rss_kib = vm_rss_kib(pid1)
            before = ctx_switches(pid1)
            time.sleep(2.0)
            idle = ctx_switches(pid1) - before
        finally:
            rig.stop()
    ms = [x * 1000 for x in latencies]
    return {
        "runtime": runtime,
        "quiet_s": quiet,
        "rounds": rounds,
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(percentile(ms, 0.99), 1),
        "min_ms": round(min(ms), 1),
        "max_ms": round(max(ms), 1),
        "pid1_vmrss_kib": rss_kib,
        "idle_ctxt_switches_2s": idle,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument(
        "--quiet",
        type=float,
        nargs="+",
        default=[0.2, 0.0],
        help="debounce quiet periods to measure (default: 0.2 s and 0)",
    )
    ns = parser.parse_args()
    runtime = "run" if run_supports_watch() else "driver"
    rows = [measure(runtime, q, ns.rounds) for q in ns.quiet]
    print(f"runtime: {runtime} (as PID 1 in a PID namespace), {ns.rounds} rounds each\n")
    print("| quiet period | p50 | p99 | min | max | PID 1 VmRSS | idle ctxt switches / 2 s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['quiet_s']} s | {r['p50_ms']} ms | {r['p99_ms']} ms | {r['min_ms']} ms "
            f"| {r['max_ms']} ms | {int(r['pid1_vmrss_kib']) / 1024:.1f} MiB "  # type: ignore[call-overload]
            f"| {r['idle_ctxt_switches_2s']} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"machine": platform.platform(), "python": platform.python_version(), "results": rows}, indent=2
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
