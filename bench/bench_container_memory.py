"""The reference deployment in 32 MiB (issue 11): its memory cgroup's peak, this tree against 0.1, in one run.

Both images are built here from source with podman, as `tests/test_container.py`
builds them: this working tree's `Dockerfile.base` and reference example, and
the same two files of git REF (default: the 0.1 release, before the render
became a fork of PID 1).  Each round starts both images, in alternating order,
with `--memory 32m --memory-swap 32m` and the variables Mesos passes, waits
until the app answers HTTP, then reads the container's memory cgroup *from the
host* (`memory.max_usage_in_bytes`, `memory.stat`): a `podman exec` probe would
be charged to the cgroup itself (~2.5 MiB of `runc init`).  Then TERM, and the
exit code must be 0.  Then one start of each under tighter limits (`--limits`,
default 24, 20 and 16 MiB): does it still start at all?

Page cache counts against a cgroup only for pages it reads first, so one
unrecorded start of each image comes first: the image's files are then cached
and the peak is the processes' own memory, as for a restarted task.  (With
`drop_caches` before each start, both versions fill the cgroup to its 32 MiB
limit with ~17 MiB of reclaimable page cache, so `max_usage_in_bytes` is the
limit itself and tells nothing; measured once by hand, 5 rounds each.)

    .venv/bin/python bench/bench_container_memory.py [--rounds 5] [--before REF]

Prints a markdown table and writes `bench/results/container_memory.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.container_support import (  # noqa: E402  (the repo root goes on sys.path first)
    BASE_IMAGE,
    REFERENCE_BUNDLE_IMAGE,
    REFERENCE_IMAGE,
    NoAnswer,
    Podman,
    ca_mount,
    check_tools,
    ensure_bundle_images,
    ensure_images,
    env_flags,
    memory_cgroup,
    mesos_env,
    read_cgroup_int,
    run_flags,
    ulimit_flags,
    wait_http,
)
from tests.pid1_helpers import free_port  # noqa: E402

RELEASE_0_1 = "11267c8"  # the last commit of 0.1, the state issue 11's figures were measured on
BEFORE_BASE = "localhost/entrypoint-base:bench-before"
BEFORE_REFERENCE = "localhost/entrypoint-example-reference:bench-before"
MiB = 2**20


def build_before(podman: Podman, ref: str) -> None:
    """REF's own Dockerfile.base and reference example, from `git archive` (the work tree is not touched)."""
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        build = ["build", "--pull=never", "--layers", "--network", "host", *ulimit_flags(), *ca_mount()]
        podman.timed("build before: Dockerfile.base", *build, "--build-arg", f"BASE={BASE_IMAGE}",
                     "-f", f"{tmp}/Dockerfile.base", "-t", BEFORE_BASE, tmp, timeout=300)
        example = f"{tmp}/examples/reference-deployment"
        podman.timed("build before: reference example", *build, "--build-arg", f"BASE_IMAGE={BEFORE_BASE}",
                     "-f", f"{example}/Dockerfile", "-t", BEFORE_REFERENCE, example, timeout=300)


def one_start(podman: Podman, image: str, limit_mib: int = 32) -> dict[str, float]:
    """Start, wait for HTTP, read the cgroup from the host, stop with TERM: the figures of one start."""
    port, name = free_port(), f"bench-mem-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", name, "--net", "host", *run_flags(), "--memory", f"{limit_mib}m",
           "--memory-swap", f"{limit_mib}m", *env_flags(mesos_env(port)), image, timeout=60)
    try:
        wait_http(podman, name, port, timeout=30, interval=0.05)
        cg = memory_cgroup(podman, name)
        stat = dict(line.split() for line in (cg / "memory.stat").read_text(encoding="ascii").splitlines())
        figures = {
            "peak_mib": read_cgroup_int(cg, "memory.max_usage_in_bytes") / MiB,
            "usage_mib": read_cgroup_int(cg, "memory.usage_in_bytes") / MiB,
            "rss_mib": int(stat["total_rss"]) / MiB,
            "cache_mib": int(stat["total_cache"]) / MiB,
            "failcnt": read_cgroup_int(cg, "memory.failcnt"),
        }
        podman("kill", "--signal", "TERM", name, timeout=30)
        code = int(podman("wait", name, timeout=30).stdout.strip())
        if code != 0:
            raise SystemExit(f"{image}: exit {code} after TERM")
        return figures
    finally:
        podman("rm", "-f", "-t", "0", name, check=False, timeout=60)


def smaller_limits(podman: Podman, images: dict[str, str], limits: list[int]) -> dict[str, dict[int, str]]:
    """Does each image still start (answer HTTP) under a tighter limit?  One start per image and limit."""
    verdicts: dict[str, dict[int, str]] = {label: {} for label in images}
    for mib in limits:
        for label, image in images.items():
            try:
                figures = one_start(podman, image, mib)
                verdicts[label][mib] = f"answers, peak {figures['peak_mib']:.1f} MiB"
            except NoAnswer as exc:
                verdicts[label][mib] = f"no start: exit {exc.code}: {exc.last_line}"
    return verdicts


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default=RELEASE_0_1, help="git ref to compare with (default: 0.1)")
    parser.add_argument("--limits", default="24,20,16", help="tighter limits (MiB) to try a start in")
    parser.add_argument("--bundle", action="store_true",
                        help="also the reference deployment on the bundle (examples/reference-deployment/"
                             "Dockerfile.bundle): its peak against this tree's pip install (issue 20)")
    ns = parser.parse_args()
    check_tools()
    # conmon writes a file named `oom` into its working directory when a container is OOM-killed
    # (the tighter limits do that to 0.1): not into the caller's tree.
    os.chdir(tempfile.mkdtemp(prefix="bench-container-memory-"))
    podman = Podman()
    ensure_images(podman)
    build_before(podman, ns.before)
    images = {"before": BEFORE_REFERENCE, "this tree": REFERENCE_IMAGE}
    if ns.bundle:
        ensure_bundle_images(podman)
        images["bundle"] = REFERENCE_BUNDLE_IMAGE
    for image in images.values():  # warm-up, not recorded: the image's files into the page cache
        one_start(podman, image)
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in images}
    for round_no in range(ns.rounds):
        order = list(images.items()) if round_no % 2 == 0 else list(reversed(images.items()))
        for label, image in order:
            runs[label].append(one_start(podman, image))

    limits = smaller_limits(podman, images, [int(x) for x in ns.limits.split(",") if x])
    peaks = {label: summary([r["peak_mib"] for r in rs]) for label, rs in runs.items()}
    drop = 1 - peaks["this tree"]["median"] / peaks["before"]["median"]
    worst_drop = 1 - peaks["this tree"]["max"] / peaks["before"]["min"]
    mode = "warm page cache"
    print(f"| reference deployment, --memory 32m, {mode}, {ns.rounds} rounds | peak (median, min–max) "
          "| RSS | page cache | failcnt |")
    print("|---|---|---|---|---|")
    for label, rs in runs.items():
        p = peaks[label]
        rss = statistics.median(r["rss_mib"] for r in rs)
        cache = statistics.median(r["cache_mib"] for r in rs)
        print(f"| {label} ({ns.before if label == 'before' else 'HEAD'}) | {p['median']:.1f} MiB "
              f"({p['min']:.1f}–{p['max']:.1f}) | {rss:.1f} MiB | {cache:.1f} MiB "
              f"| {max(r['failcnt'] for r in rs):.0f} |")
    print(f"\ndrop of the median peak: {drop:.0%}; worst case (this tree's max against before's min): "
          f"{worst_drop:.0%}; target: at least a third")
    print("\n| limit | " + " | ".join(images) + " |\n|---|" + "---|" * len(images))
    for mib in sorted({m for v in limits.values() for m in v}, reverse=True):
        print(f"| {mib} MiB | " + " | ".join(limits[label][mib] for label in images) + " |")
    bundle_target = {}
    if ns.bundle:
        ratio = peaks["bundle"]["median"] / peaks["this tree"]["median"]
        bundle_target = {"bundle peak / pip-install peak <= 1 (median)": round(ratio, 3)}
        print(f"\nbundle's median peak / the pip install's: {ratio:.2f} (target: <= 1)")
    out = ROOT / "bench" / "results" / "container_memory.json"
    out.write_text(json.dumps({
        "machine": platform.platform(), "before": ns.before, "mode": mode, "rounds": ns.rounds,
        "peak_mib": peaks, "runs": runs, "smaller_limits": limits,
        "targets": {"median peak drop >= 1/3": round(drop, 3), "worst-case drop": round(worst_drop, 3),
                    **bundle_target},
        "build_s": podman.timings,
    }, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
