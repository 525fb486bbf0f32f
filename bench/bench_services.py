"""Several services in one container: `entrypoint run --services-dir` against supervisord and s6.

Each supervisor runs five programs (`sleep 1000`, which exits at once on SIGTERM) as PID 1 of a
fresh PID namespace, as in a container, in one run of this script on this machine:

- supervisord 4.2.5 (Debian's `supervisor`): a generated config in a temporary directory,
  `nodaemon=true`, the programs' output to its stdout (the usual container set-up);
- s6-svscan 2.11 (Debian's `s6`) over a scan directory of five service directories: one
  s6-supervise per service, so its figures are the sum of the supervision tree (svscan +
  five s6-supervise), the sleeps excluded;
- `entrypoint run --services-dir DIR` with no COMMAND (the console script, as an image starts it).

Measured: start-up (spawn → all five `sleep`s exist), RSS of the supervisor, its wake-ups over an
idle window (voluntary + involuntary context switches, psutil), stop (SIGTERM to PID 1 → the
namespace is gone).  Results: bench/results/services.json and a markdown table with ratios.

    .venv/bin/python bench/bench_services.py            # 7 start/stop rounds, 5 s idle window
    .venv/bin/python bench/bench_services.py --quick    # 3 rounds, 2 s window
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
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # the measuring tool; never imported by the runtime measured
from bench_init import UNSHARE, VENV_SCRIPT, bench_env, comm, ctxt, kill_tree, poll, rss_kib

from tests.pid1_helpers import children_of, descendants

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "services.json"
PROGRAMS = 5
SLEEP = ["sleep", "1000"]
START_CAP = 30.0
STOP_CAP = 30.0


@dataclass
class Peer:
    """One supervisor: how to start it over the five programs, and which processes are "it"."""

    name: str
    argv: list[str]
    # the supervisor's own processes below the namespace's PID 1 (s6-supervise), besides PID 1
    helper_names: tuple[str, ...] = ()
    results: dict[str, float | None] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def own_pids(self, pid1: int) -> list[int]:
        """PID 1 plus its helper processes: what the RSS and wake-up figures sum over."""
        helpers = [p for p in descendants(pid1) if comm(p) in self.helper_names]
        return [pid1, *helpers]


def supervisord_peer(workdir: Path) -> Peer | None:
    binary = shutil.which("supervisord")
    if binary is None:
        return None
    conf = workdir / "supervisord.conf"
    lines = ["[supervisord]", "nodaemon=true", "user=root", f"logfile={workdir / 'supervisord.log'}",
             f"pidfile={workdir / 'supervisord.pid'}", f"childlogdir={workdir}", ""]
    for i in range(1, PROGRAMS + 1):
        lines += [f"[program:sleep{i}]", f"command={' '.join(SLEEP)}", "stdout_logfile=/dev/stdout",
                  "stdout_logfile_maxbytes=0", "redirect_stderr=true", ""]
    conf.write_text("\n".join(lines))
    return Peer("supervisord 4.2 (5 programs)", [binary, "-c", str(conf)])


def service_dirs(root: Path) -> Path:
    """Five s6-style service directories: both s6-svscan and entrypoint read this format."""
    for i in range(1, PROGRAMS + 1):
        run = root / f"sleep{i}" / "run"
        run.parent.mkdir(parents=True)
        run.write_text(f"#!/bin/sh\nexec {' '.join(SLEEP)}\n")
        run.chmod(0o755)
    return root


def s6_peer(workdir: Path) -> Peer | None:
    binary = shutil.which("s6-svscan")
    if binary is None:
        return None
    scandir = service_dirs(workdir / "s6-scan")
    return Peer("s6-svscan 2.11 (svscan + 5 s6-supervise)", [binary, str(scandir)],
                helper_names=("s6-supervise",))


def entrypoint_peer(workdir: Path) -> Peer:
    services = service_dirs(workdir / "ep-services")
    return Peer("entrypoint run --services-dir (5)",
                [VENV_SCRIPT, "run", "--services-dir", str(services),
                 "--state-file", str(workdir / "state.json")])


# --- one supervisor in its namespace -----------------------------------------------------------


class Namespace:
    """``unshare --pid --fork --mount-proc SUPERVISOR``: PID 1 is the child of unshare."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([*UNSHARE, *peer.argv], env=bench_env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.pid1 = 0

    def sleeps(self) -> int:
        return sum(1 for p in descendants(self.proc.pid) if comm(p) == "sleep")

    def wait_running(self) -> float:
        """Seconds from spawn until all five programs run."""
        def up() -> bool:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"{self.peer.name} exited {self.proc.returncode}: {err[-800:]}")
            return self.sleeps() >= PROGRAMS

        poll(up, START_CAP, f"{self.peer.name}: five programs to run")
        elapsed = time.perf_counter() - self.started
        self.pid1 = children_of(self.proc.pid)[0]
        return elapsed

    def stop(self) -> float | None:
        """SIGTERM to PID 1 → unshare has exited (the namespace is gone); None past the cap."""
        sent = time.perf_counter()
        os.kill(self.pid1, signal.SIGTERM)
        try:
            self.proc.wait(STOP_CAP)
        except subprocess.TimeoutExpired:
            return None
        return time.perf_counter() - sent

    def close(self) -> None:
        if self.proc.poll() is None:
            kill_tree(self.proc)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def probe(peer: Peer) -> str | None:
    """One untimed start and stop (warms the caches); why the peer cannot be measured, or None."""
    ns = Namespace(peer)
    try:
        ns.wait_running()
        if ns.stop() is None:
            return f"did not exit within {STOP_CAP:g} s of SIGTERM"
    except (RuntimeError, TimeoutError) as exc:
        return str(exc)
    finally:
        ns.close()
    return None


def start_stop_round(peer: Peer) -> None:
    ns = Namespace(peer)
    try:
        peer.samples.setdefault("start_ms", []).append(ns.wait_running() * 1000)
        # the supervisors' own start-up work (supervisord's startsecs=1 check) is over before the stop
        time.sleep(1.5)
        stopped = ns.stop()
        peer.samples.setdefault("stop_ms", []).append(float("inf") if stopped is None else stopped * 1000)
    finally:
        ns.close()


def bench_start_stop(peers: list[Peer], rounds: int) -> None:
    for _ in range(rounds):  # interleaved, so load hits every peer alike
        for peer in peers:
            start_stop_round(peer)
    for peer in peers:
        for key, values in peer.samples.items():
            median = statistics.median(values)
            peer.results[key] = None if median == float("inf") else median


def bench_idle(peers: list[Peer], window: float, settle: float) -> None:
    """All supervisors side by side, one shared idle window: RSS and wake-ups of their own processes."""
    spaces = [Namespace(peer) for peer in peers]
    try:
        for ns in spaces:
            ns.wait_running()
        time.sleep(settle)  # start-up work done (supervisord marks RUNNING after startsecs=1)
        own = {ns.peer.name: ns.peer.own_pids(ns.pid1) for ns in spaces}
        before = {name: sum(ctxt(p) for p in pids) for name, pids in own.items()}
        time.sleep(window)
        for ns in spaces:
            pids = own[ns.peer.name]
            ns.peer.results["idle_wakeups"] = sum(ctxt(p) for p in pids) - before[ns.peer.name]
            ns.peer.results["rss_mib"] = sum(rss_kib(p) for p in pids) / 1024
            ns.peer.results["rss_pid1_mib"] = rss_kib(ns.pid1) / 1024
            ns.peer.results["processes"] = len(pids)
            ns.peer.results["uss_mib"] = sum(psutil.Process(p).memory_full_info().uss for p in pids) / 2**20
    finally:
        for ns in spaces:
            ns.close()


# --- report ---------------------------------------------------------------------------------------

COLUMNS = [
    ("start_ms", "start → 5 running (ms)", "{:.0f}"),
    ("rss_mib", "RSS (MiB)", "{:.1f}"),
    ("uss_mib", "USS (MiB)", "{:.1f}"),
    ("idle_wakeups", "wake-ups idle {window}", "{:.0f}"),
    ("stop_ms", "SIGTERM → exit (ms)", "{:.0f}"),
]


def cell(fmt: str, value: float | None, ours: float | None) -> str:
    if value is None:
        return f"≥ {STOP_CAP:g} s (cap)"
    text = fmt.format(value)
    if ours is not None and value and ours:
        text += f" ({value / ours:.1f}×)"
    elif ours == 0 and value:
        text += " (∞×)"
    return text


def table(peers: list[Peer], meta: dict[str, object]) -> str:
    """Each peer's figures, with its ratio to entrypoint's (peer / entrypoint) in brackets."""
    ours = next((p for p in peers if p.name.startswith("entrypoint")), Peer("none", []))
    heads = [h.format(**meta) for _, h, _ in COLUMNS]
    lines = ["| supervisor | " + " | ".join(heads) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for peer in peers:
        cells = []
        for key, _, fmt in COLUMNS:
            value = peer.results.get(key)
            cells.append(fmt.format(value) if peer is ours and value is not None
                         else cell(fmt, value, ours.results.get(key)))
        lines.append(f"| {peer.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def portable(argv: list[str], workdir: Path) -> list[str]:
    """argv without this machine's paths: the checkout as ``.``, the temporary directory as ``$TMP``."""
    return [a.replace(str(workdir), "$TMP").replace(str(ROOT), ".") for a in argv]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 start/stop rounds, 2 s idle window")
    parser.add_argument("--json", default=str(RESULTS),
                        help=f"where to write the results (default {RESULTS})")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("needs root and unshare (each supervisor runs as PID 1 of a PID namespace)", file=sys.stderr)
        return 2
    rounds = 3 if args.quick else 7
    window = 2.0 if args.quick else 5.0
    meta: dict[str, object] = {
        "window": f"{window:g} s", "programs": PROGRAMS, "rounds": rounds, "quick": args.quick,
        "python": sys.version.split()[0], "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ratio": "peer / entrypoint", "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        peers = [entrypoint_peer(workdir)]
        missing = []
        for make, package in ((supervisord_peer, "supervisor"), (s6_peer, "s6")):
            peer = make(workdir)
            if peer is None:
                missing.append(package)
            else:
                peers.append(peer)
        if missing:
            print(f"[bench] not installed, skipped: {', '.join(missing)} "
                  f"(apt-get install {' '.join(missing)})", file=sys.stderr)
        unmeasured: dict[str, str] = {}
        for peer in list(peers):
            why = probe(peer)
            if why is not None:
                print(f"[bench] {peer.name}: not measured: {why}", file=sys.stderr)
                unmeasured[peer.name] = why
                peers.remove(peer)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("start/stop", lambda: bench_start_stop(peers, rounds)),
            ("idle", lambda: bench_idle(peers, window, settle=2.0)),
        ]
        for name, step in steps:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            step()
    report = table(peers, meta)
    print(report)
    out = {
        "meta": meta,
        "peers": {p.name: {"argv": portable(p.argv, workdir), **p.results, "samples": p.samples}
                  for p in peers},
        "not_measured": unmeasured,
        "table_markdown": report,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
