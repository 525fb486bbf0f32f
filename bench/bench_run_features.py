"""PID 1 with every 0.2 `run` feature switched on: resident memory, idle wake-ups, log copying.

The budget (issue 15): <= 12 MiB RSS and 0 wake-ups over a 5 s idle window,
measured exactly as ``bench_init.py`` measures them (``VmRSS`` and the
change in voluntary + involuntary context switches of the init), with the
init as PID 1 of a fresh PID namespace supervising ``sleep``.  Rows: plain
``run`` and tini (same run, for the ratios), each 0.2 feature alone, and all
of them together.  Also: ``--log-file`` line latency (write -> PID 1's
stdout) and PID 1's memory after copying 16 MiB of long lines.

    .venv/bin/python bench/bench_run_features.py           # about 40 s
    .venv/bin/python bench/bench_run_features.py --quick   # 2 s idle window

To add a feature: one entry in :func:`features` (flags plus whatever files it
needs); every row and the "all" row pick it up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_init import (
    UNSHARE,
    VENV_PY,
    Lines,
    bench_env,
    children_of,
    comm,
    ctxt,
    kill_tree,
    percentile,
    poll,
)
from bench_start_options import start_options_case

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "run_features.json"
RUN = [VENV_PY, "-m", "entrypoint", "run"]
BUDGET_MIB = 12.0


Feature = tuple[str, list[str], dict[str, str]]


def features(work: Path) -> list[Feature]:
    """Every 0.2 `run` feature as (name, flags, environment), set up in ``work``.  Extend here."""
    finish = work / "finish.d"
    finish.mkdir(exist_ok=True)
    hook = finish / "10-note.sh"
    hook.write_text("#!/bin/sh\necho finished $ENTRYPOINT_EXIT_CODE >/dev/null\n")
    hook.chmod(0o755)
    (work / "existing.log").write_text("old\n")
    start_flags, start_env = start_options_case(str(work))  # issue 12's, from bench_start_options.py
    return [
        ("--stop-delay", ["--stop-delay", "2"], {}),
        ("--finish-dir", ["--finish-dir", str(finish), "--finish-timeout", "2"], {}),
        ("--log-file", ["--log-file", str(work / "existing.log"), "--log-file", str(work / "late.log")], {}),
        ("--state-file", ["--state-file", str(work / "run" / "state.json")], {}),
        ("--user/--expand-args/--secret/--termination-log/--template", start_flags, start_env),
    ]


def rows(work: Path) -> list[Feature]:
    """(row name, argv prefix before the app, extra environment); none writes the default /run state file."""
    none = ["--state-file", ""]
    feats = features(work)
    out: list[Feature] = [("tini", ["/usr/bin/tini", "--"], {}),
                          ("run (no 0.2 feature)", [*RUN, *none, "--"], {})]
    for name, flags, env in feats:
        out.append((f"run {name}", [*RUN, *(none if name != "--state-file" else []), *flags, "--"], env))
    every = [flag for _, flags, _ in feats for flag in flags]
    every_env = {k: v for _, _, env in feats for k, v in env.items()}
    out.append(("run, all 0.2 features", [*RUN, *every, "--"], every_env))
    return out


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def start_ns(prefix: list[str], app: list[str], stdout: int | None = None,
             env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen([*UNSHARE, *prefix, *app], env={**bench_env(), **(env or {})},
                            stdin=subprocess.DEVNULL, stdout=stdout)
    poll(lambda: bool(children_of(proc.pid)), 10, "the namespace's PID 1")
    pid1 = children_of(proc.pid)[0]
    if app[0] == "sleep":
        poll(lambda: any(comm(c) == "sleep" for c in children_of(pid1)), 30, "sleep to start")
    return proc, pid1


def bench_idle(table: list[Feature], window: float) -> dict[str, dict[str, float]]:
    """All rows side by side, one shared idle window (as bench_init.py does)."""
    procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    results: dict[str, dict[str, float]] = {}
    try:
        for name, prefix, env in table:
            procs[name] = start_ns(prefix, ["sleep", "1000"], env=env)
        time.sleep(0.5)  # start-up settles
        before = {name: ctxt(pid1) for name, (_, pid1) in procs.items()}
        time.sleep(window)
        for name, (_, pid1) in procs.items():
            results[name] = {"rss_mib": status_kib(pid1, "VmRSS") / 1024,
                             "idle_ctxt_switches": ctxt(pid1) - before[name]}
    finally:
        for proc, _ in procs.values():
            kill_tree(proc)
    return results


def bench_log_latency(work: Path, lines: int) -> dict[str, float]:
    """Write a line to a followed file -> it appears on PID 1's stdout; and memory after long lines."""
    log = work / "latency.log"
    proc, pid1 = start_ns([*RUN, "--state-file", "", "--log-file", str(log), "--"], ["sleep", "1000"],
                          stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        reader = Lines(proc.stdout.fileno())
        samples = []
        with log.open("ab", buffering=0) as f:
            for i in range(lines):
                sent = time.monotonic_ns()
                f.write(f"{i}\n".encode())
                if reader.read(5) != str(i).encode():
                    raise RuntimeError("lines out of order")
                samples.append((time.monotonic_ns() - sent) / 1000)
            rss_before = status_kib(pid1, "VmRSS")
            long_line = b"x" * (4 * 1024 * 1024) + b"\n"
            for _ in range(4):
                f.write(long_line)
                if len(reader.read(10)) != len(long_line) - 1:
                    raise RuntimeError("a long line was not copied whole")
        return {"log_p50_us": percentile(samples, 0.5), "log_p99_us": percentile(samples, 0.99),
                "rss_before_long_lines_mib": rss_before / 1024,
                "hwm_after_16mib_long_lines_mib": status_kib(pid1, "VmHWM") / 1024,
                "rss_after_long_lines_mib": status_kib(pid1, "VmRSS") / 1024}
    finally:
        kill_tree(proc)


def bench_stop_delay(delay: float, runs: int) -> dict[str, float]:
    """TERM to PID 1 -> the app receives it: the stop delay's accuracy."""
    samples = []
    for _ in range(runs):
        proc, pid1 = start_ns([*RUN, "--state-file", "", "--stop-delay", str(delay), "--"],
                              [sys.executable, "-I", "-S", str(ROOT / "tests" / "progs" / "print_signals.py"),
                               "--stamp", "--exit-on", str(int(signal.SIGTERM))], stdout=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            reader = Lines(proc.stdout.fileno())
            if reader.read(30) != b"ready":
                raise RuntimeError("print_signals did not start")
            sent = time.monotonic()
            os.kill(pid1, signal.SIGTERM)
            got = float(reader.read(delay + 10).split()[1])
            proc.wait(10)
            samples.append(got - sent)
        finally:
            kill_tree(proc)
    return {"stop_delay_s": delay, "term_to_app_median_s": statistics.median(samples),
            "term_to_app_max_s": max(samples)}


def markdown(idle: dict[str, dict[str, float]], window: float) -> str:
    tini = idle.get("tini", {})
    out = [f"| PID 1 | RSS supervising (MiB) | ctx switches idle {window:g} s |", "|---|---|---|"]
    for name, r in idle.items():
        ratio = f" ({r['rss_mib'] / tini['rss_mib']:.1f}×)" if tini and name != "tini" else ""
        out.append(f"| {name} | {r['rss_mib']:.1f}{ratio} | {r['idle_ctxt_switches']:.0f} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s idle window, fewer samples")
    parser.add_argument("--json", default=str(RESULTS))
    args = parser.parse_args()
    window = 2.0 if args.quick else 5.0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        table = rows(work)
        steps: list[tuple[str, Callable[[], dict[str, object]]]] = [
            ("log", lambda: dict(bench_log_latency(work, 50 if args.quick else 500))),
            ("stop-delay", lambda: dict(bench_stop_delay(1.0, 2 if args.quick else 5))),
        ]
        print("[bench] idle ...", file=sys.stderr, flush=True)
        idle = bench_idle(table, window)
        extra: dict[str, dict[str, object]] = {}
        for name, step in steps:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            extra[name] = step()
        flags = {name: prefix for name, prefix, _ in table}
    report = markdown(idle, window)
    print(report)
    print(json.dumps(extra, indent=2))
    every = idle["run, all 0.2 features"]
    verdict = every["rss_mib"] <= BUDGET_MIB and every["idle_ctxt_switches"] == 0
    print(f"all features: {every['rss_mib']:.1f} MiB, {every['idle_ctxt_switches']:.0f} wake-ups "
          f"-> {'within' if verdict else 'OVER'} the budget (<= {BUDGET_MIB:g} MiB, 0)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "meta": {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "python": platform.python_version(), "machine": platform.platform(),
                 "cpus": os.cpu_count(), "idle_window_s": window, "quick": args.quick},
        "rows": {name: {"argv_prefix": [a.replace(str(work), "$WORK") for a in flags[name]], **r}
                 for name, r in idle.items()},
        **extra,
        "within_budget": verdict,
        "table_markdown": report,
    }, indent=2) + "\n")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
