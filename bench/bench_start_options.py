"""PID 1 with the 0.2 start options on (--user, --expand-args, --secret, --termination-log).

The budget (issue 12): PID 1 <= 12 MiB RSS with all of them on, and 0 idle
wake-ups.  Measured as bench_init.py measures (VmRSS of the init while it
supervises `sleep`, context switches over an idle window), against plain
`entrypoint run -- sleep` in the same run, each as PID 1 of its own PID
namespace.  `start_options_case()` is the piece to fold into a bench of
every 0.2 feature: it returns the options, environment and files.

    .venv/bin/python bench/bench_start_options.py            # 5 s idle window
    .venv/bin/python bench/bench_start_options.py --quick    # 2 s
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_init import (  # bench/ is not a package
    VENV_PY,
    bench_env,
    children_of,
    comm,
    ctxt,
    kill_tree,
    poll,
    spawn_wait,
    status_fields,
)

RESULTS = Path(__file__).resolve().parent / "results" / "start_options.json"


def start_options_case(workdir: str) -> tuple[list[str], dict[str, str]]:
    """`run` options with every issue-12 start option on, and the environment they need."""
    secret = Path(workdir, "db-password")
    secret.write_text("bench-secret\n")
    secret.chmod(0o400)
    template = Path(workdir, "app.conf.template")
    template.write_text("listen ${PORT0:-8080}\nhost ${HOST}\n")
    options = ["--user", "nobody", "--expand-args", "--secret", "DB_PASSWORD",
               "--termination-log", str(Path(workdir, "termination-log")),
               "--template", f"{template}:{Path(workdir, 'app.conf')}"]
    return options, {"DB_PASSWORD_FILE": str(secret)}


def _namespace(argv: list[str]) -> list[str]:
    return ["unshare", "--pid", "--fork", "--mount-proc", *argv]


def _pid1(proc: subprocess.Popen[bytes]) -> int:
    poll(lambda: bool(children_of(proc.pid)), 30, "the runtime to start")
    return children_of(proc.pid)[0]


#: name -> (argv up to and including "--", environment, expand the command's arguments?)
Cases = dict[str, tuple[list[str], dict[str, str], bool]]


def _command(words: list[str], expand: bool) -> list[str]:
    """With --expand-args the last argument is a variable reference, so the expansion really runs."""
    return [*words[:-1], "${BENCH_ARG:-" + words[-1] + "}"] if expand else words


def idle(cases: Cases, window: float) -> dict[str, dict[str, float]]:
    """Every case supervises `sleep` side by side; one shared idle window."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    results: dict[str, dict[str, float]] = {}
    try:
        for name, (argv, env, expand) in cases.items():
            procs[name] = subprocess.Popen(_namespace([*argv, *_command(["sleep", "1000"], expand)]), env=env,
                                           stdin=subprocess.DEVNULL)
        pids = {name: _pid1(proc) for name, proc in procs.items()}
        for pid in pids.values():
            poll(lambda pid=pid: any(comm(c) == "sleep" for c in children_of(pid)), 30, "sleep to start")
        time.sleep(0.5)
        before = {name: ctxt(pid) for name, pid in pids.items()}
        time.sleep(window)
        for name, pid in pids.items():
            fields = status_fields(pid)
            sleep_uid = [int(status_fields(c)["Uid"].split()[0]) for c in children_of(pid)]
            results[name] = {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
                             "peak_rss_mib": int(fields["VmHWM"].split()[0]) / 1024,
                             "idle_ctxt_switches": ctxt(pid) - before[name],
                             "pid1_uid": int(fields["Uid"].split()[0]),
                             "app_uid": sleep_uid[0] if sleep_uid else -1}
    finally:
        for proc in procs.values():
            kill_tree(proc)
    return results


def startup_ms(cases: Cases, runs: int) -> dict[str, float]:
    """start -> exit of `run [options] -- /bin/true` (median), interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    commands = {name: [*argv, *_command(["/bin/true", "x"], expand)]
                for name, (argv, _, expand) in cases.items()}
    for name, (_, env, _) in cases.items():  # warm-up (bytecode)
        spawn_wait(commands[name], env)
    for _ in range(runs):
        for name, (_, env, _) in cases.items():
            samples[name].append(spawn_wait(commands[name], env))
    return {name: statistics.median(s) * 1000 for name, s in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS)
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-start-options-") as workdir:
        options, extra = start_options_case(workdir)
        run = [VENV_PY, "-m", "entrypoint", "run"]
        base = {**bench_env(), "ENTRYPOINT_HOOKS_DIR": "/nonexistent",
                "ENTRYPOINT_TEMPLATES_DIR": "/nonexistent"}
        template = options.index("--template")
        cases: Cases = {
            "entrypoint run": ([*run, "--"], base, False),
            "+ --user --expand-args --secret --termination-log":
                ([*run, *options[:template], *options[template + 2:], "--"], {**base, **extra}, True),
            "+ the same and 1 template": ([*run, *options, "--"], {**base, **extra}, True),
        }
        results = idle(cases, 2.0 if ns.quick else 5.0)
        times = startup_ms(cases, 10 if ns.quick else 30)
    for name in cases:
        results[name]["start_exit_true_ms"] = times[name]
    print("| PID 1 | RSS supervising | peak RSS | ctx switches idle | start→exit `/bin/true` "
          "| uid PID 1 / app |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['rss_mib']:.1f} MiB | {r['peak_rss_mib']:.1f} MiB "
              f"| {r['idle_ctxt_switches']:.0f} | {r['start_exit_true_ms']:.1f} ms "
              f"| {r['pid1_uid']:.0f} / {r['app_uid']:.0f} |")
    ns.json.parent.mkdir(parents=True, exist_ok=True)
    ns.json.write_text(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(),
                                   "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
