"""Benchmark the services' output framing (``supervise/services/output.py``) against ``cat``.

Three figures, each measured in one run on the same machine:

- **throughput**: a writer process sends 100-byte lines (and a second case, 8 KiB lines)
  into a service pipe. :class:`ServiceOutput` reads it the way the loop does (the signal
  blocked, ``sigwaitinfo``, then ``drain``) and frames it into ``/dev/null``. The reference
  is ``cat`` copying the same stream from a pipe to ``/dev/null``. Reported: MB/s, the
  ratio to ``cat``, wake-ups and ``write(2)`` calls per MiB.
- **a line of megabytes without a newline**: 64 MiB of ``x``. Reported: the largest
  number of bytes the framer held back, and how much the reader's peak RSS grew.
- **import cost in PID 1**: the VmRSS of a fresh ``python -I -S`` importing the loop,
  then the loop together with ``services.config`` and ``services.output``.

Prints a markdown table and writes ``bench/results/service_output.json``.

    .venv/bin/python bench/bench_service_output.py [--mib N] [--rounds N]
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from entrypoint.supervise.services import output  # noqa: E402
from entrypoint.supervise.services.output import OUTPUT_SIGNAL, ServiceOutput  # noqa: E402

RESULTS = REPO / "bench" / "results" / "service_output.json"
MIB = 1024 * 1024

WRITER = """
import os, sys
size, total = int(sys.argv[1]), int(sys.argv[2])
line = b"y" * (size - 1) + b"\\n"
block = line * max(1, 65536 // size)
sent = 0
while sent < total:
    view = memoryview(block)
    while view:
        view = view[os.write(1, view):]
    sent += len(block)
"""


def writer(size: int, total: int, stdout: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(size), str(total)], stdout=stdout,
                            stdin=subprocess.DEVNULL)


def framed(size: int, total: int) -> dict[str, float]:
    """One service writing ``total`` bytes of ``size``-byte lines, read as the loop reads."""
    sink = os.open(os.devnull, os.O_WRONLY)
    outputs = ServiceOutput(sink, sink)
    writes = 0
    real_write = output.os.write

    def counting(fd: int, data: bytes | memoryview) -> int:
        nonlocal writes
        writes += 1
        return real_write(fd, data)

    output.os.write = counting  # type: ignore[assignment]
    wakeups = 0
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {OUTPUT_SIGNAL, signal.SIGIO})
        start = time.perf_counter()
        w_out, w_err = outputs.pipes("svc")
        proc = writer(size, total, w_out)
        os.close(w_out)
        os.close(w_err)
        while outputs.readers:
            signal.sigwaitinfo({OUTPUT_SIGNAL, signal.SIGIO})
            outputs.drain()
            wakeups += 1
        elapsed = time.perf_counter() - start
        proc.wait()
    finally:
        output.os.write = real_write
        os.close(sink)
    mib = total / MIB
    return {"seconds": elapsed, "mb_per_s": total / 1e6 / elapsed, "wakeups_per_mib": wakeups / mib,
            "writes_per_mib": writes / mib}


def cat(size: int, total: int) -> float:
    read_end, write_end = os.pipe()
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        copier = subprocess.Popen(["cat"], stdin=read_end, stdout=null)
        proc = writer(size, total, write_end)
        os.close(read_end)
        os.close(write_end)
        proc.wait()
        copier.wait()
    return time.perf_counter() - start


def long_line(total: int) -> dict[str, float]:
    """A child process frames ``total`` bytes without a newline; its peak pending and RSS growth."""
    code = f"""
import os, resource, signal, subprocess, sys
sys.path.insert(0, {str(REPO)!r})
from entrypoint.supervise.services.output import OUTPUT_SIGNAL, ServiceOutput
signal.pthread_sigmask(signal.SIG_BLOCK, {{OUTPUT_SIGNAL, signal.SIGIO}})
sink = os.open(os.devnull, os.O_WRONLY)
outputs = ServiceOutput(sink, sink)
w_out, w_err = outputs.pipes("flood")
proc = subprocess.Popen([sys.executable, "-c", {WRITER!r}, str({total} + 1), str({total})], stdout=w_out,
                        stdin=subprocess.DEVNULL)
os.close(w_out); os.close(w_err)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
held = 0
while outputs.readers:
    signal.sigwaitinfo({{OUTPUT_SIGNAL, signal.SIGIO}})
    outputs.drain()
    held = max([held] + [p.framer.pending for p in outputs.readers])
proc.wait()
print(held, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=300)
    held, grown = done.stdout.split()
    return {"max_pending_bytes": int(held), "limit_bytes": output.LIMIT, "rss_growth_kib": int(grown)}


def import_rss(modules: list[str]) -> int:
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + "".join(f"import {m}\n" for m in modules)
            + "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64, help="bytes per throughput case, in MiB (default 64)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case (median; default 5)")
    ns = parser.parse_args()
    total = ns.mib * MIB
    rows: dict[str, object] = {}
    for size in (100, 8192):
        ours = [framed(size, total) for _ in range(ns.rounds)]
        ref = [cat(size, total) for _ in range(ns.rounds)]
        best = {key: statistics.median(r[key] for r in ours) for key in ours[0]}
        cat_s = statistics.median(ref)
        rows[f"lines_{size}"] = {**best, "cat_seconds": cat_s, "cat_mb_per_s": total / 1e6 / cat_s,
                                 "ratio_to_cat": best["seconds"] / cat_s}
    rows["long_line"] = long_line(total)
    loop = ["entrypoint.supervise.loop"]
    with_services = [*loop, "entrypoint.supervise.services.config", "entrypoint.supervise.services.output"]
    base = statistics.median(import_rss(loop) for _ in range(ns.rounds))
    more = statistics.median(import_rss(with_services) for _ in range(ns.rounds))
    rows["import_rss_kib"] = {"loop": base, "loop_and_services": more, "delta": more - base}
    result = {"machine": platform.machine(), "python": platform.python_version(), "mib": ns.mib,
              "rounds": ns.rounds, "results": rows,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| case | framed MB/s | cat MB/s | time vs cat | wake-ups/MiB | write(2)/MiB |")
    print("|---|---|---|---|---|---|")
    for size in (100, 8192):
        r = rows[f"lines_{size}"]
        assert isinstance(r, dict)
        print(f"| {size}-byte lines | {r['mb_per_s']:.0f} | {r['cat_mb_per_s']:.0f} "
              f"| {r['ratio_to_cat']:.2f}x | {r['wakeups_per_mib']:.1f} | {r['writes_per_mib']:.0f} |")
    ll = rows["long_line"]
    imp = rows["import_rss_kib"]
    assert isinstance(ll, dict) and isinstance(imp, dict)
    print(f"\n{ns.mib} MiB without a newline: at most {ll['max_pending_bytes']} bytes held back "
          f"(limit {ll['limit_bytes']}), reader's peak RSS +{ll['rss_growth_kib']} KiB")
    print(f"PID 1 imports: loop {imp['loop']} KiB VmRSS, with services.config + output "
          f"{imp['loop_and_services']} KiB (+{imp['delta']} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
