"""PID-1 benchmarks: `entrypoint run` against tini, dumb-init and a shell-script entrypoint.

Every figure comes from one run of this script on this machine, so the ratios
against tini compare like with like.  See bench/README.md for what each column
means and how it is measured.

    .venv/bin/python bench/bench_init.py            # full run (about a minute)
    .venv/bin/python bench/bench_init.py --quick    # fewer repetitions (about 20 s)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # the measuring tool (entrypoint[status]); never imported by the runtime measured

from tests.pid1_helpers import children_of, descendants  # one psutil view of a tree, as the tests use

ROOT = Path(__file__).resolve().parent.parent
CHILDREN = str(ROOT / "bench" / "_children.py")
RESULTS = ROOT / "bench" / "results" / "init.json"
VENV_PY = str(ROOT / ".venv" / "bin" / "python")
VENV_SCRIPT = str(ROOT / ".venv" / "bin" / "entrypoint")
PY = sys.executable
CHILD_PY = [PY, "-I", "-S", CHILDREN]
STOP_CAP = 3.0
REAP_CAP = 10.0


def bench_env() -> dict[str, str]:
    """A small container-like environment; no PYTHON* knobs, so bytecode caching is on as in an image."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": "/root",
        "HOST": "agent-1.example.org",
        "PORT0": "31000",
        "MARATHON_APP_ID": "/bench/app",
    }


@dataclass
class Init:
    name: str
    prefix: list[str]
    # the shell entrypoint wraps the command differently and forwards nothing
    forwards: bool = True
    results: dict[str, float | None] = field(default_factory=dict)

    def argv(self, command: list[str]) -> list[str]:
        return [*self.prefix, *command]


def shell_init(template: str, out: str) -> Init:
    script = f'envsubst < "{template}" > "{out}"; "$@"'
    return Init("sh script (no exec)", ["/bin/sh", "-c", script, "sh"], forwards=False)


LEAN_LAUNCHER = "import sys; sys.path.insert(0, {root!r}); from entrypoint.cli import main; sys.exit(main())"


def entrypoint_inits(template: str, out: str) -> list[Init]:
    """The ways an image can start the runtime; `lean` is what a `python -I -S` launcher gives."""
    lean = [PY, "-I", "-S", "-c", LEAN_LAUNCHER.format(root=str(ROOT))]
    return [
        Init("entrypoint (python -m)", [VENV_PY, "-m", "entrypoint", "run", "--"]),
        Init("entrypoint (console script)", [VENV_SCRIPT, "run", "--"]),
        Init("entrypoint (python -I -S launcher)", [*lean, "run", "--"]),
        Init(
            "entrypoint (python -m) + 1 template",
            [VENV_PY, "-m", "entrypoint", "run", "--template", f"{template}:{out}", "--"],
        ),
    ]


def all_inits(workdir: str, only: list[str] | None) -> list[Init]:
    template = os.path.join(workdir, "app.conf.tmpl")
    Path(template).write_text("listen ${PORT0:-8080}\nhost ${HOST}\n")
    inits = [
        Init("tini", ["/usr/bin/tini", "-s", "--"]),
        Init("dumb-init", ["/usr/bin/dumb-init", "--"]),
        *entrypoint_inits(template, os.path.join(workdir, "app.ep.conf")),
        shell_init(template, os.path.join(workdir, "app.sh.conf")),
    ]
    if only:
        inits = [i for i in inits if any(o in i.name for o in only)]
    return inits


# --- small process helpers ----------------------------------------------------


def comm(pid: int) -> str:
    try:
        name: str = psutil.Process(pid).name()
    except psutil.NoSuchProcess:
        return ""
    return name


def status_fields(pid: int) -> dict[str, str]:
    """Raw /proc/PID/status fields, for the few that psutil does not report as such (VmHWM).

    RSS, context switches, children and names above go through psutil.
    """
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def poll(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    for p in [*descendants(proc.pid), proc.pid]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(5)


class Lines:
    """Read lines from a pipe with a deadline (select, no threads)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError("no line from the child")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("child closed its stdout")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line


# --- (1) start -> exit ------------------------------------------------------------


def spawn_wait(argv: list[str], env: dict[str, str]) -> float:
    devnull = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=devnull)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} exited with {os.waitstatus_to_exitcode(status)}")
    return elapsed


def bench_startup(inits: list[Init], runs: int) -> dict[str, float]:
    env = bench_env()
    cases: dict[str, list[str]] = {
        "/bin/true": ["/bin/true"],
        "python -I -S -c pass": [PY, "-I", "-S", "-c", "pass"],
    }
    for init in inits:
        cases[init.name] = init.argv(["/bin/true"])
    per_case: dict[str, int] = {}
    for name, argv in cases.items():  # warm caches and write bytecode once
        warm = statistics.median(spawn_wait(argv, env) for _ in range(3))
        per_case[name] = runs if warm < 0.05 else max(10, runs // 10)  # slow cases: fewer runs
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(runs):  # interleaved, so drift hits every case alike
        for name, argv in cases.items():
            if i < per_case[name]:
                samples[name].append(spawn_wait(argv, env))
    return {name: statistics.median(s) for name, s in samples.items()}


# --- (2) RSS and (3) idle context switches ------------------------------------------


def ctxt(pid: int) -> int:
    switches = psutil.Process(pid).num_ctx_switches()
    return int(switches.voluntary + switches.involuntary)


def rss_kib(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss // 1024)


def _has_sleep_child(pid: int) -> Callable[[], bool]:
    return lambda: any(comm(c) == "sleep" for c in children_of(pid))


def bench_idle(inits: list[Init], window: float) -> None:
    """All inits supervise `sleep` side by side; one shared idle window."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for init in inits:
            procs[init.name] = subprocess.Popen(
                init.argv(["sleep", "1000"]), env=bench_env(), stdin=subprocess.DEVNULL
            )
        for proc in procs.values():
            poll(_has_sleep_child(proc.pid), 30, "sleep to start")
        time.sleep(0.5)  # let start-up work (re-exec, lazy imports) settle
        before = {name: ctxt(p.pid) for name, p in procs.items()}
        time.sleep(window)
        for init in inits:
            pid = procs[init.name].pid
            init.results["rss_mib"] = rss_kib(pid) / 1024
            init.results["idle_ctxt_switches"] = ctxt(pid) - before[init.name]
    finally:
        for proc in procs.values():
            kill_tree(proc)


# --- (4) signal forwarding latency ----------------------------------------------


def latency_samples(proc: subprocess.Popen[bytes], target: int, count: int) -> list[float]:
    assert proc.stdout is not None
    lines = Lines(proc.stdout.fileno())
    if lines.read(30) != b"ready":
        raise RuntimeError("sigecho did not start")
    out = []
    for _ in range(count):
        sent = time.monotonic_ns()
        os.kill(target, signal.SIGUSR1)
        received = int(lines.read(5))
        out.append((received - sent) / 1000)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_latency(inits: list[Init], count: int) -> dict[str, float]:
    direct = subprocess.Popen([*CHILD_PY, "sigecho"], env=bench_env(), stdout=subprocess.PIPE)
    try:
        base = latency_samples(direct, direct.pid, count)
    finally:
        kill_tree(direct)
    for init in inits:
        if not init.forwards:
            init.results["sig_p50_us"] = init.results["sig_p99_us"] = None
            continue
        proc = subprocess.Popen(init.argv([*CHILD_PY, "sigecho"]), env=bench_env(), stdout=subprocess.PIPE)
        try:
            samples = latency_samples(proc, proc.pid, count)
        finally:
            kill_tree(proc)
        init.results["sig_p50_us"] = percentile(samples, 0.5)
        init.results["sig_p99_us"] = percentile(samples, 0.99)
    return {"sig_p50_us": percentile(base, 0.5), "sig_p99_us": percentile(base, 0.99)}


# --- (5) orphan burst, (6) stop -> exit: the init as PID 1 of a fresh PID namespace ---

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]


def reap_once(init: Init, orphans: int) -> float | None:
    env = {**bench_env(), "BENCH_REAP_CAP": str(REAP_CAP)}
    argv = [*UNSHARE, *init.argv([*CHILD_PY, "orphans", str(orphans)])]
    out = subprocess.run(argv, env=env, capture_output=True, timeout=REAP_CAP + 60)
    for line in out.stdout.decode().splitlines():
        kind, seconds, _left = line.split()
        return float(seconds) if kind == "REAP" else None
    raise RuntimeError(f"{init.name}: no result from the orphan burst: {out.stderr.decode()[-500:]}")


def _median_ms(once: Callable[[], float | None], runs: int) -> float | None:
    """Median of *runs* samples in ms; None (reported as "≥ cap") as soon as one sample hits the cap."""
    samples = []
    for _ in range(runs):
        sample = once()
        if sample is None:
            return None
        samples.append(sample)
    return statistics.median(samples) * 1000


def bench_reap(inits: list[Init], orphans: int, runs: int) -> None:
    for init in inits:
        init.results["reap_ms"] = _median_ms(functools.partial(reap_once, init, orphans), runs)


@contextmanager
def in_namespace(init: Init, command: list[str]) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    proc = subprocess.Popen([*UNSHARE, *init.argv(command)], env=bench_env(), stdout=subprocess.PIPE)
    try:
        poll(lambda: bool(children_of(proc.pid)), 10, "the namespace's PID 1")
        yield proc, children_of(proc.pid)[0]
    finally:
        if proc.poll() is None:
            kill_tree(proc)


def stop_once(init: Init) -> float | None:
    with in_namespace(init, [*CHILD_PY, "term_app"]) as (proc, pid1):
        assert proc.stdout is not None
        if Lines(proc.stdout.fileno()).read(30) != b"ready":
            raise RuntimeError("term_app did not start")
        start = time.monotonic()
        os.kill(pid1, signal.SIGTERM)
        try:
            proc.wait(STOP_CAP)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - start


def bench_stop(inits: list[Init], runs: int) -> None:
    for init in inits:
        init.results["stop_ms"] = _median_ms(functools.partial(stop_once, init), runs)


# --- report -------------------------------------------------------------------------

COLUMNS = [
    ("start_ms", "start→exit `/bin/true` (ms)", "{:.1f}"),
    ("rss_mib", "RSS supervising (MiB)", "{:.1f}"),
    ("idle_ctxt_switches", "ctx switches idle {window}", "{:.0f}"),
    ("sig_p50_us", "signal p50 (µs)", "{:.0f}"),
    ("sig_p99_us", "signal p99 (µs)", "{:.0f}"),
    ("reap_ms", "reap {orphans} orphans (ms)", "{:.1f}"),
    ("stop_ms", "TERM→exit (ms)", "{:.1f}"),
]

NOT_AVAILABLE = {
    "sig_p50_us": "not forwarded",
    "sig_p99_us": "not forwarded",
    "reap_ms": f"≥ {REAP_CAP:g} s (cap)",
    "stop_ms": f"≥ {STOP_CAP:g} s (cap)",
}


MISSING = float("nan")


def cell(key: str, fmt: str, value: float | None, ref: float | None) -> str:
    if value is not None and value != value:  # NaN: not measured in this run
        return "–"
    if value is None:
        return NOT_AVAILABLE.get(key, "–")
    text = fmt.format(value)
    if ref:
        text += f" ({value / ref:.2f}×)"
    return text


def table(inits: list[Init], extra: dict[str, dict[str, float]], meta: dict[str, object]) -> str:
    tini = next((i for i in inits if i.name == "tini"), None)
    heads = [h.format(**meta) for _, h, _ in COLUMNS]
    lines = ["| init | " + " | ".join(heads) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for init in inits:
        cells = [
            cell(key, fmt, init.results.get(key, MISSING), tini.results.get(key) if tini else None)
            for key, _, fmt in COLUMNS
        ]
        lines.append(f"| {init.name} | " + " | ".join(cells) + " |")
    for name, values in extra.items():
        cells = [cell(key, fmt, values[key], None) if key in values else "" for key, _, fmt in COLUMNS]
        lines.append(f"| *{name}* | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 2 s idle window")
    parser.add_argument("--only", action="append", help="benchmark only inits whose name contains this")
    parser.add_argument(
        "--skip", action="append", default=[], help="skip a measurement: start idle latency reap stop"
    )
    parser.add_argument(
        "--json", default=str(RESULTS), help=f"where to write the results (default {RESULTS})"
    )
    args = parser.parse_args()
    runs = 40 if args.quick else 200
    window = 2.0 if args.quick else 5.0
    signals_n = 200 if args.quick else 1000
    orphans = 1000
    repeat = 1 if args.quick else 5
    meta: dict[str, object] = {
        "window": f"{window:g} s",
        "orphans": orphans,
        "quick": args.quick,
        "start_runs": runs,
        "signals": signals_n,
        "repeats": repeat,
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
    }
    extra: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as workdir:
        inits = all_inits(workdir, args.only)
        steps: list[tuple[str, Callable[[], object]]] = [
            ("start", lambda: _startup(inits, runs, extra)),
            ("idle", lambda: bench_idle(inits, window)),
            (
                "latency",
                lambda: extra.setdefault("signal sent to the app directly", {}).update(
                    bench_latency(inits, signals_n)
                ),
            ),
            ("reap", lambda: bench_reap(inits, orphans, repeat)),
            ("stop", lambda: bench_stop(inits, 3 if args.quick else 10)),
        ]
        for name, step in steps:
            if name in args.skip:
                continue
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            step()
    report = table(inits, extra, meta)
    print(report)
    bare = extra.get("python -I -S -c pass", {}).get("start_ms")
    verdicts = {}
    if bare:
        for init in inits:
            start = init.results.get("start_ms")
            if start is not None and init.name.startswith("entrypoint"):
                verdicts[init.name] = start / bare
                print(f"{init.name}: start = {start / bare:.2f}× bare `python -I -S -c pass` (target ≤ 3×)")
    out = {
        "meta": meta,
        "inits": {i.name: {"argv_prefix": i.prefix, **i.results} for i in inits},
        "baselines": extra,
        "start_vs_bare_python": verdicts,
        "table_markdown": report,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def _startup(inits: list[Init], runs: int, extra: dict[str, dict[str, float]]) -> None:
    medians = bench_startup(inits, runs)
    for init in inits:
        init.results["start_ms"] = medians[init.name] * 1000
    extra["/bin/true alone"] = {"start_ms": medians["/bin/true"] * 1000}
    extra["python -I -S -c pass"] = {"start_ms": medians["python -I -S -c pass"] * 1000}


if __name__ == "__main__":
    sys.exit(main())
