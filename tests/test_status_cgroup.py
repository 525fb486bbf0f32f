"""cgroup figures for `status`: v2 and v1 layouts laid out in files, and the real v1 of this machine."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoint.status.cgroup import cgroup_figures, parse_mountinfo, parse_proc_cgroup, read_cgroup
from tests.pid1_helpers import wait_until

pytestmark = pytest.mark.timeout(60)

MIB = 1 << 20


def mountline(point: Path | str, fstype: str, options: str, root: str = "/") -> str:
    return f"35 31 0:32 {root} {point} rw,nosuid,nodev,noexec,relatime - {fstype} {fstype} rw,{options}"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_kubernetes_pod_limit_binds_the_container(tmp_path: Path) -> None:
    """No cgroup namespace: the full path, and the pod's memory.max above the container's 'max'."""
    ctr = tmp_path / "kubepods.slice" / "pod1" / "ctr"
    write(ctr / "memory.max", "max\n")
    write(ctr / "memory.current", "1234567\n")
    write(ctr / "cpu.max", "50000 100000\n")
    write(ctr.parent / "memory.max", f"{32 * MIB}\n")
    write(tmp_path / "kubepods.slice" / "memory.max", f"{64 * MIB}\n")
    figures = cgroup_figures("0::/kubepods.slice/pod1/ctr\n", mountline(tmp_path, "cgroup2", "nsdelegate"))
    assert (figures.memory_version, figures.memory_limit, figures.memory_usage) == ("v2", 32 * MIB, 1234567)
    assert (figures.cpu_version, figures.cpu_quota_us, figures.cpu_period_us) == ("v2", 50000, 100000)
    assert figures.cpu_quota_cores == 0.5


def test_v2_in_a_cgroup_namespace_without_limits(tmp_path: Path) -> None:
    write(tmp_path / "memory.max", "max\n")
    write(tmp_path / "memory.current", "4096\n")
    write(tmp_path / "cpu.max", "max 100000\n")
    figures = cgroup_figures("0::/\n", mountline(tmp_path, "cgroup2", "nsdelegate"))
    assert (figures.memory_version, figures.memory_limit, figures.memory_usage) == ("v2", None, 4096)
    assert (figures.cpu_quota_us, figures.cpu_period_us, figures.cpu_quota_cores) == (None, 100000, None)


def test_v2_mount_point_with_a_space_is_unescaped(tmp_path: Path) -> None:
    root = tmp_path / "cg root"
    write(root / "memory.max", "1048576\n")
    write(root / "memory.current", "1\n")
    figures = cgroup_figures("0::/\n", mountline(str(root).replace(" ", "\\040"), "cgroup2", "x"))
    assert figures.memory_limit == MIB


def test_v1_docker_without_cgroup_namespace(tmp_path: Path) -> None:
    """/proc/1/cgroup says /docker/ID and that very directory is mounted as the hierarchy's root."""
    memory, cpu = tmp_path / "memory", tmp_path / "cpu"
    write(memory / "memory.limit_in_bytes", f"{32 * MIB}\n")
    write(memory / "memory.usage_in_bytes", f"{20 * MIB}\n")
    write(memory / "memory.stat", f"cache 0\nhierarchical_memory_limit {48 * MIB}\n")
    write(cpu / "cpu.cfs_quota_us", "150000\n")
    write(cpu / "cpu.cfs_period_us", "100000\n")
    proc = "12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n0::/docker/abc\n"
    mounts = "\n".join([mountline(memory, "cgroup", "memory", "/docker/abc"),
                        mountline(cpu, "cgroup", "cpu,cpuacct", "/docker/abc")])
    figures = cgroup_figures(proc, mounts)
    assert (figures.memory_version, figures.memory_limit, figures.memory_usage) == ("v1", 32 * MIB, 20 * MIB)
    assert (figures.cpu_version, figures.cpu_quota_cores) == ("v1", 1.5)


def test_v1_unlimited_and_no_quota(tmp_path: Path) -> None:
    memory, cpu = tmp_path / "memory" / "a", tmp_path / "cpu" / "a"
    write(memory / "memory.limit_in_bytes", "9223372036854771712\n")
    write(memory / "memory.usage_in_bytes", "100\n")
    write(cpu / "cpu.cfs_quota_us", "-1\n")
    write(cpu / "cpu.cfs_period_us", "100000\n")
    mounts = "\n".join([mountline(tmp_path / "memory", "cgroup", "memory"),
                        mountline(tmp_path / "cpu", "cgroup", "cpu")])
    figures = cgroup_figures("4:memory:/a\n1:cpu:/a\n", mounts)
    assert (figures.memory_limit, figures.memory_usage, figures.cpu_quota_us) == (None, 100, None)


def test_hybrid_host_reads_v1_memory_not_the_empty_unified_tree(tmp_path: Path) -> None:
    write(tmp_path / "memory" / "memory.limit_in_bytes", f"{MIB}\n")
    write(tmp_path / "memory" / "memory.usage_in_bytes", "7\n")
    write(tmp_path / "unified" / "cgroup.procs", "")
    mounts = "\n".join([mountline(tmp_path / "memory", "cgroup", "memory"),
                        mountline(tmp_path / "unified", "cgroup2", "")])
    figures = cgroup_figures("4:memory:/\n0::/\n", mounts)
    assert (figures.memory_version, figures.memory_limit, figures.cpu_version) == ("v1", MIB, None)


def test_nothing_mounted_means_unknown() -> None:
    figures = cgroup_figures("0::/\n", "")
    assert figures.memory_version is None and figures.memory_limit is None and figures.memory_usage is None


def test_parsers_ignore_junk_lines() -> None:
    assert parse_proc_cgroup("junk\n3:memory:/x\n0::/y\n") == ({"memory": "/x"}, "/y")
    assert parse_mountinfo("junk\n1 2 3 / /proc rw - proc proc rw\n") == []


# --- the real v1 memory and cpu controllers of this machine --------------------


def _own_dir(controller: str) -> Path | None:
    v1, _ = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
    mounts = [m for m in parse_mountinfo(Path("/proc/self/mountinfo").read_text())
              if m.fstype == "cgroup" and controller in m.options]
    if controller not in v1 or not mounts or os.geteuid() != 0:
        return None
    directory = Path(mounts[0].point) / v1[controller].lstrip("/")
    return directory if directory.is_dir() else None


@pytest.fixture
def limited_sleep() -> Iterator[int]:
    """A `sleep` moved into fresh v1 memory (64 MiB) and cpu (0.25 CPU) cgroups."""
    memory, cpu = _own_dir("memory"), _own_dir("cpu")
    if memory is None or cpu is None:
        pytest.skip("needs root and cgroup v1 memory and cpu controllers")
    name = f"entrypoint-test-{uuid.uuid4().hex[:8]}"
    made = []
    proc = subprocess.Popen(["sleep", "60"])
    try:
        for parent, files in ((memory, {"memory.limit_in_bytes": str(64 * MIB)}),
                              (cpu, {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "25000"})):
            child = parent / name
            try:
                child.mkdir()
            except OSError as exc:
                pytest.skip(f"cannot create a cgroup here: {exc}")
            made.append(child)
            for file, value in files.items():
                (child / file).write_text(value)
            (child / "cgroup.procs").write_text(str(proc.pid))
        wait_until(lambda: f"/{name}" in Path(f"/proc/{proc.pid}/cgroup").read_text(), 5, "the move")
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(10)
        for child in made:
            wait_until(lambda c=child: not (c / "cgroup.procs").read_text().strip(), 5, "an empty cgroup")
            child.rmdir()


def test_real_v1_limits_of_a_process(limited_sleep: int) -> None:
    figures = read_cgroup(limited_sleep)
    assert (figures.memory_version, figures.memory_limit) == ("v1", 64 * MIB)
    assert figures.memory_usage is not None and 0 <= figures.memory_usage < 64 * MIB
    assert (figures.cpu_version, figures.cpu_quota_us, figures.cpu_period_us) == ("v1", 25000, 100000)
    assert figures.cpu_quota_cores == 0.25


def test_real_v1_of_this_process_matches_its_files() -> None:
    memory = _own_dir("memory")
    if memory is None:
        pytest.skip("needs cgroup v1 memory")
    figures = read_cgroup()
    assert figures.memory_version == "v1" and figures.memory_usage is not None and figures.memory_usage > 0
    raw = int((memory / "memory.limit_in_bytes").read_text())
    if raw >= 1 << 62:
        assert figures.memory_limit is None
    else:
        assert figures.memory_limit is not None and figures.memory_limit <= raw  # a parent may bind
