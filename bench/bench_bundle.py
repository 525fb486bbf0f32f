"""The bundle against the pip install: size, start-up, PID 1's memory and idle wake-ups (issue 20).

Both are built in this run from this checkout: the bundle by ``scripts/bundle`` (or the tree
``--tree DIR/opt/entrypoint`` names), the pip install as a fresh venv with ``pip install .[status]``
(not editable), so the ratios compare like with like on this machine.

    .venv/bin/python bench/bench_bundle.py             # about a minute
    .venv/bin/python bench/bench_bundle.py --quick     # fewer repetitions

Targets (docs/bundle.md): tree <= 24 MiB on disk, tar.gz <= 10 MiB, ``run -- /bin/true`` <= 1.1x the
pip install, PID 1 RSS supervising <= 11 MiB with 0 wake-ups while idle.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import psutil  # the measuring tool; never imported by what is measured

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "bundle.json"
MIB = 1024 * 1024


def env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": "/root", "ENTRYPOINT_STATE_FILE": "",
            "ENTRYPOINT_TEMPLATES_DIR": "/nonexistent", "ENTRYPOINT_HOOKS_DIR": "/nonexistent"}


def build_bundle(work: Path) -> Path:
    subprocess.run([sys.executable, str(ROOT / "scripts/bundle"), str(work)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return work / "opt/entrypoint"


def build_pip_install(work: Path) -> Path:
    """A venv with the product installed as a user would (`pip install .[status]`), not editable."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    f"{ROOT}[status]"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=work)
    return venv / "bin/entrypoint"


def sizes(tree: Path) -> dict[str, float]:
    files = [p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()]
    on_disk = sum(p.stat().st_blocks * 512 for p in files)
    apparent = sum(p.stat().st_size for p in files)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:  # gzip's default, a layer's
        tar.add(tree, arcname="opt/entrypoint")
    return {"tree_on_disk_mib": round(on_disk / MIB, 2), "tree_apparent_mib": round(apparent / MIB, 2),
            "tar_gz_mib": round(len(buf.getvalue()) / MIB, 2), "files": len(files)}


def start_times(commands: dict[str, list[str]], rounds: int) -> dict[str, float]:
    """Median wall time (ms) of ``CMD run -- /bin/true``, the commands interleaved round by round."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(3):  # warm the page cache for both
        for argv in commands.values():
            subprocess.run([*argv, "run", "--", "/bin/true"], env=env(), check=True)
    for _ in range(rounds):
        for name, argv in commands.items():
            started = time.perf_counter()
            subprocess.run([*argv, "run", "--", "/bin/true"], env=env(), check=True)
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(values), 2) for name, values in times.items()}


def supervising(argv: list[str], idle_s: float) -> dict[str, float]:
    """PID 1 (a new PID namespace) supervising `sleep`: its RSS, and its context switches while idle."""
    argv = ["unshare", "--pid", "--fork", "--mount-proc", *argv, "run", "--", "sleep", "600"]
    proc = subprocess.Popen(argv, env=env())
    try:
        deadline = time.monotonic() + 20
        while True:
            kids = psutil.Process(proc.pid).children()
            grandkids = kids[0].children() if kids else []
            if any(k.name() == "sleep" for k in grandkids):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the runtime did not start sleep")
            time.sleep(0.02)
        pid1 = kids[0]
        time.sleep(0.5)  # let start-up's last work finish before the idle window
        before = pid1.num_ctx_switches()
        time.sleep(idle_s)
        after = pid1.num_ctx_switches()
        wakeups = (after.voluntary + after.involuntary) - (before.voluntary + before.involuntary)
        return {"pid1_rss_mib": round(pid1.memory_info().rss / MIB, 2), "idle_wakeups": wakeups,
                "idle_window_s": idle_s}
    finally:
        for kid in psutil.Process(proc.pid).children():
            kid.kill()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tree", type=Path, help="an already built OUTDIR/opt/entrypoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        tree = args.tree or build_bundle(work / "bundle")
        pip_exe = build_pip_install(work)
        bundle_exe = tree / "bin/entrypoint"
        version = subprocess.run([str(bundle_exe), "--version"], capture_output=True, text=True).stdout
        version = version.strip()
        size = sizes(tree)
        starts = start_times({"bundle": [str(bundle_exe)], "pip": [str(pip_exe)]}, 10 if args.quick else 60)
        idle = 2.0 if args.quick else 5.0
        pid1 = {"bundle": supervising([str(bundle_exe)], idle), "pip": supervising([str(pip_exe)], idle)}
    record = {
        "bundle": version, "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "size": size, "start_run_true_ms": starts,
        "start_ratio_bundle_to_pip": round(starts["bundle"] / starts["pip"], 3),
        "pid1": pid1,
        "targets": {"tree_on_disk_mib": 24, "tar_gz_mib": 10, "start_ratio": 1.1, "pid1_rss_mib": 11,
                    "idle_wakeups": 0},
        "note": "the tree is not at /opt/entrypoint here: the launcher execs its own ld.so with the "
                "interpreter (at /opt/entrypoint it execs the interpreter directly): one exec either way",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
