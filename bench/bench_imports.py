"""What each of the four libraries costs a process: import time and resident memory.

The figures behind the README's "Decisions" (why PID 1 imports none of them).
Each case is a fresh ``python -I`` that imports the library and reports the
import's duration and its VmRSS afterwards; medians of N runs, interleaved so
load drifts hit every case alike; "bare" imports nothing.

    .venv/bin/python bench/bench_imports.py          # 9 runs each, writes bench/results/imports.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "imports.json"

PROBE = """
import time
t = time.perf_counter()
{statement}
elapsed = time.perf_counter() - t
rss = [line for line in open('/proc/self/status') if line.startswith('VmRSS:')][0].split()[1]
print(elapsed * 1000, rss)
"""

CASES = {
    "bare": "pass",
    "psutil": "import psutil",
    "psutil, tree walk": (
        "import psutil; [p.memory_info() for p in psutil.Process(1).children(recursive=True)]"),
    "watchdog": "import watchdog.observers, watchdog.events",
    "watchdog, observer running": (
        "import tempfile, watchdog.observers, watchdog.events; o = watchdog.observers.Observer(); "
        "o.schedule(watchdog.events.FileSystemEventHandler(), tempfile.gettempdir()); o.start(); "
        "o.stop(); o.join()"),
    "jinja2 (sandbox)": "import jinja2.sandbox",
    "pydantic-settings": "import pydantic_settings",
}


def measure(runs: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in CASES}
    for _ in range(runs):
        for name, statement in CASES.items():
            out = subprocess.run([sys.executable, "-I", "-c", PROBE.format(statement=statement)],
                                 capture_output=True, text=True, check=True, timeout=60).stdout.split()
            samples[name].append((float(out[0]), int(out[1])))
    base_kib = statistics.median(kib for _, kib in samples["bare"])
    return {name: {"import_ms": round(statistics.median(ms for ms, _ in s), 1),
                   "rss_mib": round(statistics.median(kib for _, kib in s) / 1024, 1),
                   "rss_added_mib": round((statistics.median(kib for _, kib in s) - base_kib) / 1024, 1)}
            for name, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    ns = parser.parse_args()
    results = measure(ns.runs)
    print("| library | import | VmRSS after | added to a bare interpreter |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['import_ms']} ms | {r['rss_mib']} MiB | +{r['rss_added_mib']} MiB |")
    RESULTS.write_text(json.dumps({"runs": ns.runs, "python": sys.version.split()[0], "results": results},
                                  indent=2) + "\n")


if __name__ == "__main__":
    main()
