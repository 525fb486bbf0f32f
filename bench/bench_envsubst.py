"""Benchmark `entrypoint envsubst` against GNU `/usr/bin/envsubst`.

Generates a 36 MB template with 1.2 M references, runs both programs on it
in the same session (several repetitions each, median wall time), measures
each child's peak RSS with ``os.wait4`` and checks that both outputs are
byte-identical.  Prints a markdown table and writes ``bench/results/envsubst.json``.

    .venv/bin/python bench/bench_envsubst.py [--reps N] [--size-mb M] [--refs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrypoint.render.envsubst import collect_names

GNU = "/usr/bin/envsubst"
TIME = "/usr/bin/time"
RESULTS = Path(__file__).resolve().parent / "results" / "envsubst.json"
ENV = {f"VAR_{i}".encode(): f"value-{i}-{'x' * (i % 13)}".encode() for i in range(40)}
ENV.update({b"HOST": b"example.org", b"PORT": b"8080"})
BLOCK_REFS = 4000
SHELL_FORMAT = "${HOST} ${PORT} $VAR_1 $VAR_2 $VAR_3"


def make_template(path: Path, size: int, refs: int, seed: int = 1) -> None:
    """Text with ``refs`` references spread evenly, filler to reach ``size`` bytes.

    Mixes braced/bare, set/unset names, nginx-style lowercase refs and the
    non-references GNU copies literally (``$$``, ``${X:-y}``, ``$1``).
    """
    rng = random.Random(seed)
    names = [n.decode() for n in ENV] + ["UNSET_A", "host", "remote_addr", "http_proxy"]
    literals = ["", " ", "; ", " $1 ", " ${X:-y} ", " cost $ 5 ", "\n", "=", ", ", " $$"]
    pieces: list[str] = []
    for _ in range(BLOCK_REFS):
        name = rng.choice(names)
        ref = f"${{{name}}}" if rng.random() < 0.5 else f"${name}"
        pieces.append(ref + rng.choice(literals))
    block = "".join(pieces).encode()
    repeats = max(1, refs // BLOCK_REFS)
    filler_per_block = max(0, (size - repeats * len(block)) // repeats)
    unit = b"filler text without references "
    filler = (b"# " + unit * (filler_per_block // len(unit) + 1))[: max(0, filler_per_block - 2)]
    chunk = block + b"\n" + filler + b"\n"
    with path.open("wb") as fh:
        for _ in range(repeats):
            fh.write(chunk)


@dataclass
class Run:
    wall_s: float
    cpu_s: float  # user + system of the program (GNU time's wait4 includes its child)
    peak_kib: int


def run_once(argv: list[str], src: Path, dst: Path) -> Run:
    """Run one child with stdin/stdout redirected to files.

    Peak RSS comes from GNU time when present: a child's ru_maxrss also counts
    the memory of the process that forked it (Linux records the old mm's
    high-water mark at exec), so it must be launched from a tiny process, not
    from this Python.  Without /usr/bin/time the figure is os.wait4's and is
    only an upper bound.
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, str(src), os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(dst), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    rss_file = dst.with_suffix(".rss")
    if os.path.exists(TIME):
        argv = [TIME, "-f", "%M", "-o", str(rss_file), *argv]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, ENV, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed with status {status}")
    peak = int(rss_file.read_text().split()[-1]) if os.path.exists(TIME) else usage.ru_maxrss
    return Run(wall, usage.ru_utime + usage.ru_stime, peak)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def summary(name: str, argv: list[str], runs: list[Run], digest: str) -> dict[str, Any]:
    walls = [r.wall_s for r in runs]
    return {
        "name": name,
        "argv": argv,
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "median_cpu_s": statistics.median(r.cpu_s for r in runs),
        "runs_s": walls,
        "peak_rss_mib": max(r.peak_kib for r in runs) / 1024,
        "output_sha256": digest,
    }


def compare(
    label: str, gnu_argv: list[str], our_argv: list[str], src: Path, tmp: Path, reps: int
) -> dict[str, Any]:
    """Alternate GNU and ours so that load changes on the machine hit both alike."""
    gnu_out, our_out = tmp / "gnu.out", tmp / "ours.out"
    gnu_runs, our_runs = [], []
    for _ in range(reps):
        gnu_runs.append(run_once(gnu_argv, src, gnu_out))
        our_runs.append(run_once(our_argv, src, our_out))
    gnu, mine = sha256(gnu_out), sha256(our_out)
    if gnu != mine:
        raise SystemExit(f"{label}: outputs differ")
    return {
        "scenario": label,
        "gnu": summary("GNU envsubst", gnu_argv, gnu_runs, gnu),
        "entrypoint": summary("entrypoint envsubst", our_argv, our_runs, mine),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--size-mb", type=float, default=36)
    parser.add_argument("--refs", type=int, default=1_200_000)
    args = parser.parse_args()
    if not os.path.exists(GNU):
        print(f"{GNU} not found", file=sys.stderr)
        return 1
    ours = [sys.executable, "-m", "entrypoint", "envsubst"]
    scenarios = [("all variables", []), ("SHELL-FORMAT", [SHELL_FORMAT])]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        src = tmp / "template"
        make_template(src, int(args.size_mb * 1_000_000), args.refs)
        template = src.read_bytes()
        n_refs = len(collect_names(template))
        size = len(template)
        del template
        rows = []
        for label, extra in scenarios:
            rows.append(compare(label, [GNU, *extra], [*ours, *extra], src, tmp, args.reps))
    result = {
        "template_bytes": size,
        "references": n_refs,
        "reps": args.reps,
        "python": platform.python_version(),
        "load_average_before": os.getloadavg(),
        "rss_method": "GNU time %M" if os.path.exists(TIME) else "os.wait4 ru_maxrss (upper bound)",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"template: {size / 1e6:.1f} MB, {n_refs:,} references, median of {args.reps} runs\n")
    print("| scenario | GNU wall | our wall | ratio | GNU CPU | our CPU | ratio | GNU RSS | our RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        g, m = row["gnu"], row["entrypoint"]
        print(
            f"| {row['scenario']} | {g['median_s']:.3f} s | {m['median_s']:.3f} s "
            f"| {m['median_s'] / g['median_s']:.2f}x | {g['median_cpu_s']:.3f} s "
            f"| {m['median_cpu_s']:.3f} s | {m['median_cpu_s'] / g['median_cpu_s']:.2f}x "
            f"| {g['peak_rss_mib']:.1f} MiB | {m['peak_rss_mib']:.1f} MiB |"
        )
    print("\noutputs byte-identical (sha256) in every scenario")
    return 0


if __name__ == "__main__":
    sys.exit(main())
