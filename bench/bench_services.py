"""Several services under one PID 1: `entrypoint run --services-dir` against supervisord.

Five programs that do nothing (``sleep``, which exits at once on SIGTERM) under
each supervisor, as PID 1 of its own PID namespace.  Figures: start-up (until
all five run), the supervisor's resident memory once they run, its wake-ups
(context switches) over an idle window, and the stop (SIGTERM to PID 1 until
it exits).  supervisord is Debian's 4.2.5 when installed; it is skipped
otherwise.  Not a test: nothing here asserts a time.

    .venv/bin/python bench/bench_services.py            # full run
    .venv/bin/python bench/bench_services.py --quick    # fewer repetitions, shorter idle window
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil  # the measuring tool; never imported by the runtime measured

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "services.json"
SERVICES = 5


def poll(cond: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.002)


def services_dir(root: Path) -> Path:
    for n in range(SERVICES):
        directory = root / f"svc{n}"
        directory.mkdir(parents=True)
        (directory / "run").write_text("#!/bin/sh\nexec sleep 3600\n")
        (directory / "run").chmod(0o755)
    return root


def supervisord_conf(root: Path) -> Path:
    conf = root / "supervisord.conf"
    programs = "".join(f"[program:svc{n}]\ncommand=sleep 3600\nautorestart=true\nstartsecs=0\n"
                       for n in range(SERVICES))
    conf.write_text(f"[supervisord]\nnodaemon=true\nlogfile=/dev/null\nlogfile_maxbytes=0\n"
                    f"pidfile={root}/supervisord.pid\n{programs}")
    return conf


def pid1_of(proc: subprocess.Popen[bytes]) -> psutil.Process:
    """The supervisor: the one child of ``unshare``."""
    holder: list[psutil.Process] = []

    def found() -> bool:
        kids = psutil.Process(proc.pid).children()
        holder[:] = kids
        return bool(kids)

    poll(found, 10, "the supervisor to start")
    return holder[0]


def sleepers(pid1: psutil.Process) -> int:
    return sum(1 for p in pid1.children(recursive=True) if p.name() == "sleep")


def one_run(argv: list[str], idle: float) -> dict[str, float]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
           "ENTRYPOINT_STATE_FILE": ""}
    started = time.monotonic()
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid1 = pid1_of(proc)
        poll(lambda: sleepers(pid1) == SERVICES, 20, "five services")
        start = time.monotonic() - started
        time.sleep(0.5)  # let start-up work (supervisord's state transitions) settle
        rss = pid1.memory_info().rss / (1 << 20)
        before = pid1.num_ctx_switches()
        time.sleep(idle)
        after = pid1.num_ctx_switches()
        wakeups = (after.voluntary + after.involuntary) - (before.voluntary + before.involuntary)
        stop_at = time.monotonic()
        pid1.send_signal(signal.SIGTERM)
        proc.wait(30)
        stop = time.monotonic() - stop_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"start_s": start, "rss_mib": rss, "idle_wakeups": wakeups, "idle_s": idle, "stop_s": stop}


def median_runs(argv: list[str], runs: int, idle: float) -> dict[str, float]:
    results = [one_run(argv, idle) for _ in range(runs)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    ns = parser.parse_args()
    runs, idle = (2, 3.0) if ns.quick else (5, 10.0)
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        services = services_dir(root / "services")
        figures["entrypoint"] = median_runs(
            [sys.executable, "-m", "entrypoint", "run", "--services-dir", str(services)], runs, idle)
        supervisord = shutil.which("supervisord")
        if supervisord is not None:
            conf = supervisord_conf(root)
            figures["supervisord"] = median_runs([supervisord, "-c", str(conf)], runs, idle)
    for name, row in figures.items():
        print(f"{name:12} start {row['start_s'] * 1000:7.1f} ms  RSS {row['rss_mib']:5.1f} MiB  "
              f"idle wake-ups {row['idle_wakeups']:4.0f} in {row['idle_s']:g} s  "
              f"stop {row['stop_s'] * 1000:7.1f} ms")
    if "supervisord" in figures:
        ours, theirs = figures["entrypoint"], figures["supervisord"]
        print(f"ratios supervisord/entrypoint: RSS {theirs['rss_mib'] / ours['rss_mib']:.1f}x, "
              f"stop {theirs['stop_s'] / ours['stop_s']:.0f}x, "
              f"start {theirs['start_s'] / ours['start_s']:.1f}x")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
