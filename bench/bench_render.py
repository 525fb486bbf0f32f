"""Render benchmarks (issue 11): `entrypoint render`/`check`/`run --template` against the shell one-liner.

Every figure comes from one run of this script on this machine, cases
interleaved so that load hits them alike; ratios are against baselines
measured in the same run: `python -I -S -c pass`, `sh -c 'envsubst < t > out'`
and `entrypoint run -- /bin/true`.  Peak RSS is GNU time's `%M` (the child's
high-water mark, from wait4).  The memory-cgroup case runs `run --template
small.tmpl:out -- sleep 1` inside a fresh cgroup v1 memory group limited to
16 MiB of memory+swap and records its exit code and peak.  With `--before REF`
the same cases also run against the code of git REF (e.g. `main`), extracted
to a temporary directory and put first on PYTHONPATH, for a before/after in
one run.  Prints markdown tables and writes `bench/results/render.json`.

    .venv/bin/python bench/bench_render.py [--quick] [--before main]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.pid1_helpers import remove_cgroup  # the tests' retrying rmdir of a cgroup

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "render.json"
VENV_PY = str(ROOT / ".venv" / "bin" / "python")
SCRIPT = str(ROOT / ".venv" / "bin" / "entrypoint")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")
EXAMPLES = ROOT / "examples"
#: what the console script was before `cli.console`, for `--before` refs that have no console()
OLD_LAUNCHER = [VENV_PY, "-c", "import sys; from entrypoint.cli import main; sys.exit(main())"]

SMALL_TMPL = "listen ${PORT0}\nserver_name ${HOST:-localhost}\n"
SMALL_J2 = "listen {{ env.PORT0 }}\nserver_name {{ env.HOST | default('localhost') }}\n"


def bench_env(extra_path: str | None = None) -> dict[str, str]:
    """Small and container-like, no PYTHON* knobs (bytecode caching on, as in an image)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/root", "HOST": "agent-1.example.org",
           "PORT0": "31000", "MARATHON_APP_ID": "/bench/app",
           "ENTRYPOINT_TEMPLATES_DIR": "/nonexistent", "ENTRYPOINT_HOOKS_DIR": "/nonexistent"}
    if extra_path:
        env["PYTHONPATH"] = extra_path
    return env


class Case:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: str) -> None:
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.times: list[float] = []

    def once(self) -> float:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            start = time.perf_counter()
            proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=devnull, stderr=devnull,
                                    close_fds=True)
            code = proc.wait()
            elapsed = time.perf_counter() - start
        finally:
            os.close(devnull)
        if code != 0:
            raise SystemExit(f"{self.name}: exit {code}: {' '.join(self.argv)}")
        return elapsed

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000


def peak_rss_kib(case: Case, runs: int) -> int:
    """Median of GNU time's %M over a few runs."""
    values = []
    for _ in range(runs):
        done = subprocess.run(["/usr/bin/time", "-f", "%M", *case.argv], env=case.env, cwd=case.cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
        values.append(int(done.stderr.strip().splitlines()[-1]))
    return int(statistics.median(values))


def extract(ref: str, into: Path) -> str:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "entrypoint"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return str(into)


def make_cases(work: Path, before: str | None) -> list[Case]:
    env, w = bench_env(), str(work)
    cases = [
        Case("python -I -S -c pass", [sys.executable, "-I", "-S", "-c", "pass"], env, w),
        # The floor of every Jinja row: the venv's interpreter importing Jinja2's sandbox, nothing else.
        Case("python -I -c 'import jinja2.sandbox'", [VENV_PY, "-I", "-c", "import jinja2.sandbox"], env, w),
        Case("sh -c 'envsubst < t > out'", ["sh", "-c", "envsubst < small.tmpl > out.envsubst"], env, w),
        Case("render small.tmpl", [SCRIPT, "render", "small.tmpl:out.conf"], env, w),
        Case("render small.j2", [SCRIPT, "render", "small.j2:out.j2.conf"], env, w),
        Case("run -- /bin/true", [SCRIPT, "run", "--", "/bin/true"], env, w),
        Case("run --template small.tmpl -- /bin/true",
             [SCRIPT, "run", "--template", "small.tmpl:run.conf", "--", "/bin/true"], env, w),
        Case("run --template small.j2 -- /bin/true",
             [SCRIPT, "run", "--template", "small.j2:run.j2.conf", "--", "/bin/true"], env, w),
    ]
    for example, extra in (("reference-deployment", []), ("nginx", ["--braced-only"]), ("jvm", [])):
        cases.append(Case(f"check {example} --marathon-app",
                          [SCRIPT, "check", *extra, "--marathon-app", str(EXAMPLES / example / "app.json"),
                           str(EXAMPLES / example / "templates")], env, w))
    if before:
        benv = bench_env(before)
        old = OLD_LAUNCHER
        cases += [
            Case("before: render small.tmpl", [*old, "render", "small.tmpl:out.before"], benv, w),
            Case("before: run -- /bin/true", [*old, "run", "--", "/bin/true"], benv, w),
            Case("before: run --template small.tmpl -- /bin/true",
                 [*old, "run", "--template", "small.tmpl:run.before", "--", "/bin/true"], benv, w),
        ]
    return cases


def cgroup_run(work: Path, limit_mib: int, env: dict[str, str], template: str,
               launcher: list[str] | None = None) -> dict[str, object]:
    """`run --template T -- sleep 1` inside a new memory cgroup (memory+swap limited)."""
    if not (CGROUP_V1 / "memory.limit_in_bytes").exists() or os.geteuid() != 0:
        return {"skipped": "needs root and the cgroup v1 memory controller"}
    group = CGROUP_V1 / f"entrypoint-bench-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(limit_mib << 20))
        memsw = group / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(limit_mib << 20))
        script = f'echo $$ > {group}/cgroup.procs && exec "$@"'
        argv = ["sh", "-c", script, "sh", *(launcher or [SCRIPT]), "run", "--template", f"{template}:cg.conf",
                "--", "sleep", "1"]
        done = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=60)
        oom = (group / "memory.oom_control").read_text()
        kills = next((int(line.split()[1]) for line in oom.splitlines() if line.startswith("oom_kill ")),
                     None)
        return {
            "limit_mib": limit_mib, "template": template, "exit_code": done.returncode,
            "rendered": (work / "cg.conf").exists(),
            "peak_mib": round(int((group / "memory.max_usage_in_bytes").read_text()) / 2**20, 1),
            "failcnt": int((group / "memory.failcnt").read_text()), "oom_kills": kills,
            "stderr": done.stderr.strip()[-300:],
        }
    finally:
        (work / "cg.conf").unlink(missing_ok=True)
        remove_cgroup(group)  # a group left behind does not spoil the figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="15 rounds instead of 40")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--before", metavar="REF", help="also measure the code of this git ref (e.g. main)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    ns = parser.parse_args()
    rounds = ns.rounds or (15 if ns.quick else 40)
    with tempfile.TemporaryDirectory(prefix="entrypoint-bench-") as tmp:
        work = Path(tmp)
        (work / "small.tmpl").write_text(SMALL_TMPL)
        (work / "small.j2").write_text(SMALL_J2)
        before = None
        if ns.before:
            (work / "before").mkdir()
            before = extract(ns.before, work / "before")
        cases = make_cases(work, before)
        for case in cases:  # warm-up: .pyc files written, page cache warm
            case.once()
        for _ in range(rounds):
            for case in cases:
                case.times.append(case.once())
        by_name = {c.name: c for c in cases}
        rss = {name: peak_rss_kib(by_name[name], 5)
               for name in ("python -I -S -c pass", "sh -c 'envsubst < t > out'", "render small.tmpl",
                            "render small.j2", "run -- /bin/true", "run --template small.tmpl -- /bin/true")}
        cg = [cgroup_run(work, 16, bench_env(), "small.tmpl"), cgroup_run(work, 16, bench_env(), "small.j2")]
        if before:
            old = cgroup_run(work, 16, bench_env(before), "small.tmpl", OLD_LAUNCHER)
            cg.append({"code": f"before ({ns.before})", **old})
    bare = by_name["python -I -S -c pass"].median_ms
    sh = by_name["sh -c 'envsubst < t > out'"].median_ms
    run_true = by_name["run -- /bin/true"].median_ms
    rows = []
    for case in cases:
        ms = case.median_ms
        rows.append({"case": case.name, "median_ms": round(ms, 1), "x_python": round(ms / bare, 2),
                     "x_envsubst_sh": round(ms / sh, 1), "x_run_true": round(ms / run_true, 2),
                     "peak_rss_mib": round(rss[case.name] / 1024, 1) if case.name in rss else None})
    targets = {
        "render small.tmpl <= 3x python": round(by_name["render small.tmpl"].median_ms / bare, 2),
        "render small.tmpl peak RSS <= 14 MiB": round(rss["render small.tmpl"] / 1024, 1),
        "run --template small.tmpl <= 1.3x run":
            round(by_name["run --template small.tmpl -- /bin/true"].median_ms / run_true, 2),
        "run --template small.j2 <= 4x run":
            round(by_name["run --template small.j2 -- /bin/true"].median_ms / run_true, 2),
        "check examples --marathon-app <= 4x python": {
            c.name: round(c.median_ms / bare, 2) for c in cases if c.name.startswith("check ")},
        "(floor of the Jinja rows) import jinja2.sandbox, x python":
            round(by_name["python -I -c 'import jinja2.sandbox'"].median_ms / bare, 2),
        "16 MiB cgroup: run --template small.tmpl -- sleep 1 exits 0": cg[0].get("exit_code"),
    }
    print(f"{rounds} interleaved rounds, medians; {platform.python_version()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}\n")
    print("| case | median | × python -I -S | × sh envsubst | × run /bin/true | peak RSS |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        peak = f"{r['peak_rss_mib']} MiB" if r["peak_rss_mib"] is not None else ""
        print(f"| {r['case']} | {r['median_ms']} ms | {r['x_python']}× | {r['x_envsubst_sh']}× "
              f"| {r['x_run_true']}× | {peak} |")
    print("\n| memory cgroup (memory+swap limit) | template | exit | rendered | peak | failcnt | OOM kills |")
    print("|---|---|---|---|---|---|---|")
    for c in cg:
        if "skipped" in c:
            print(f"| skipped: {c['skipped']} |||||||")
            continue
        print(f"| {c.get('code', 'this branch')}, {c['limit_mib']} MiB | {c['template']} | {c['exit_code']} "
              f"| {c['rendered']} | {c['peak_mib']} MiB | {c['failcnt']} | {c['oom_kills']} |")
    print("\ntargets:", json.dumps(targets, indent=1, default=str))
    ns.json.parent.mkdir(parents=True, exist_ok=True)
    ns.json.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.platform(),
        "python": platform.python_version(), "cores": os.cpu_count(), "load_1min": os.getloadavg()[0],
        "rounds": rounds, "results": rows, "cgroup": cg, "targets": targets,
        "envsubst": shutil.which("envsubst")}, indent=2, default=str) + "\n")
    print(f"\nwrote {ns.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
