"""Building and running images with podman on machines without a Docker engine or registry.

Everything follows ``shared/reference/containers.md``: a Debian+Python base
made locally with mmdebstrap (by ``.ci/container-setup.sh``, cached outside
the repo), a private podman store so the machine's own is never touched,
``--runtime runc`` (crun rejects hybrid cgroups), hard rlimits passed
explicitly (they cannot be raised here), and the host CA bundle mounted into
``RUN`` steps (outbound TLS is intercepted by a private CA).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("ENTRYPOINT_CI_CACHE", "/var/cache/entrypoint-ci"))
SUITE = "bookworm"
BASE_TAR = CACHE / f"debian-python-{SUITE}.tar"
BASE_IMAGE = f"localhost/debian-python:{SUITE}"
ENTRYPOINT_IMAGE = "localhost/entrypoint-base:test"
REFERENCE_IMAGE = "localhost/entrypoint-example-reference:test"
NGINX_IMAGE = "localhost/entrypoint-example-nginx:test"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SETUP_SCRIPT = ROOT / ".ci/container-setup.sh"
REQUIRED_TOOLS = ("podman", "runc")
REFERENCE_APP = ROOT / "examples/reference-deployment/app.json"
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")


class Unavailable(Exception):
    """Why the container proof cannot run on this machine (the test skips with it)."""


def ulimit_flags() -> list[str]:
    """Soft = hard = the current hard limits: asking for more fails even as root here."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
    nofile_s, nproc_s = (("-1" if v == resource.RLIM_INFINITY else str(v)) for v in (nofile, nproc))
    return ["--ulimit", f"nofile={nofile_s}:{nofile_s}", "--ulimit", f"nproc={nproc_s}:{nproc_s}"]


def ca_mount() -> list[str]:
    return ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"] if CA_BUNDLE.is_file() else []


def _runroot() -> Path:
    """Runtime state belongs on a per-boot filesystem; /run when writable."""
    for base in (Path("/run"), Path("/tmp")):
        if os.access(base, os.W_OK):
            return base / "entrypoint-ci" / "podman-runroot"
    raise Unavailable("no writable /run or /tmp for podman's runroot")


@dataclass
class Podman:
    """podman with a private store; every call bounded in time."""

    root: Path = field(default_factory=lambda: CACHE / "podman-root")
    runroot: Path = field(default_factory=_runroot)
    timings: dict[str, float] = field(default_factory=dict)
    version: str = ""

    def argv(self, *args: str) -> list[str]:
        return ["podman", "--root", str(self.root), "--runroot", str(self.runroot), "--runtime", "runc",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args]

    def __call__(self, *args: str, timeout: float = 60, check: bool = True,
                 input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args), capture_output=True, timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
        result = subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(errors="replace"),
                                             done.stderr.decode(errors="replace"))
        if check and result.returncode != 0:
            what = " ".join(args[:2])
            raise RuntimeError(f"podman {what} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    def timed(self, label: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        try:
            return self(*args, timeout=timeout)
        finally:
            self.timings[label] = round(time.monotonic() - started, 2)

    def image_exists(self, ref: str) -> bool:
        return self("image", "exists", ref, check=False).returncode == 0


def check_tools() -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise Unavailable(f"not installed: {', '.join(missing)} (run .ci/container-setup.sh as root)")
    if os.geteuid() != 0:
        raise Unavailable("the container proof runs podman as root (private store, host network)")


def ensure_base_tarball(timings: dict[str, float]) -> Path:
    """The cached rootfs, made by the CI setup script when missing (about 20 s)."""
    if BASE_TAR.is_file() and BASE_TAR.stat().st_size > 0:
        return BASE_TAR
    if shutil.which("mmdebstrap") is None:
        raise Unavailable(f"{BASE_TAR} missing and mmdebstrap not installed")
    started = time.monotonic()
    done = subprocess.run(["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    timings["rootfs (mmdebstrap)"] = round(time.monotonic() - started, 2)
    if done.returncode != 0 or not BASE_TAR.is_file():
        raise Unavailable(f"could not build the base rootfs: {done.stderr.strip()[-500:]}")
    return BASE_TAR


def ensure_images(podman: Podman) -> None:
    """Base import (cached), Dockerfile.base, the reference example (layer cache: reruns are fast)."""
    tarball = ensure_base_tarball(podman.timings)
    if not podman.image_exists(BASE_IMAGE):
        podman.timed("import base", "import", str(tarball), BASE_IMAGE)
    # --network host: RUN steps need PyPI, and the host network needs no CNI/netavark set-up.
    build = ["build", "--pull=never", "--layers", "--network", "host", *ulimit_flags(), *ca_mount()]
    podman.timed("build Dockerfile.base", *build, "--build-arg", f"BASE={BASE_IMAGE}",
                 "-f", str(ROOT / "Dockerfile.base"), "-t", ENTRYPOINT_IMAGE, str(ROOT), timeout=300)
    build_example(podman, "reference-deployment", REFERENCE_IMAGE)


BUNDLE_IMAGE = "localhost/entrypoint-bundle:test"
REFERENCE_BUNDLE_IMAGE = "localhost/entrypoint-example-reference-bundle:test"
BUSYBOX_IMAGE = "localhost/entrypoint-example-bundle-busybox:test"
JRE_TAR = CACHE / f"debian-jre-{SUITE}.tar"
JRE_IMAGE = f"localhost/debian-jre:{SUITE}"
JVM_BUNDLE_IMAGE = "localhost/entrypoint-example-jvm-bundle:test"


def ensure_bundle_images(podman: Podman) -> None:
    """Dockerfile.bundle, then the examples on it: FROM-scratch busybox, the reference deployment."""
    tarball = ensure_base_tarball(podman.timings)
    if not podman.image_exists(BASE_IMAGE):
        podman.timed("import base", "import", str(tarball), BASE_IMAGE)
    build = ["build", "--pull=never", "--layers", "--network", "host", *ulimit_flags(), *ca_mount(),
             "--build-arg", f"BASE={BASE_IMAGE}"]
    podman.timed("build Dockerfile.bundle", *build, "-f", str(ROOT / "Dockerfile.bundle"), "-t", BUNDLE_IMAGE,
                 str(ROOT), timeout=600)
    for name, dockerfile, tag in (("bundle-busybox", "Dockerfile", BUSYBOX_IMAGE),
                                  ("reference-deployment", "Dockerfile.bundle", REFERENCE_BUNDLE_IMAGE)):
        example = ROOT / "examples" / name
        podman.timed(f"build {name} on the bundle", *build, "--build-arg", f"BUNDLE={BUNDLE_IMAGE}",
                     "-f", str(example / dockerfile), "-t", tag, str(example), timeout=300)
    if not JRE_TAR.is_file():  # made by .ci/container-setup.sh beside the base rootfs (about 40 s)
        started = time.monotonic()
        subprocess.run(["bash", str(SETUP_SCRIPT)], capture_output=True, timeout=600,
                       stdin=subprocess.DEVNULL)
        podman.timings["rootfs JRE (mmdebstrap)"] = round(time.monotonic() - started, 2)
    if not JRE_TAR.is_file():
        raise Unavailable(f"{JRE_TAR} missing (.ci/container-setup.sh could not make it)")
    if not podman.image_exists(JRE_IMAGE):
        podman.timed("import JRE base", "import", str(JRE_TAR), JRE_IMAGE, timeout=300)
    podman.timed("build jvm on the bundle", "build", "--pull=never", "--layers", *ulimit_flags(),
                 "--build-arg", f"BUNDLE={BUNDLE_IMAGE}", "--build-arg", f"BASE={JRE_IMAGE}",
                 "-f", str(ROOT / "examples/jvm/Dockerfile"), "-t", JVM_BUNDLE_IMAGE,
                 str(ROOT / "examples/jvm"), timeout=300)


def build_example(podman: Podman, name: str, tag: str, timeout: float = 300) -> None:
    """An example's Dockerfile, FROM the base image just built."""
    example = ROOT / "examples" / name
    podman.timed(f"build {name} example", "build", "--pull=never", "--layers", "--network", "host",
                 *ulimit_flags(), *ca_mount(), "--build-arg", f"BASE_IMAGE={ENTRYPOINT_IMAGE}",
                 "-f", str(example / "Dockerfile"), "-t", tag, str(example), timeout=timeout)


def image_size_mb(podman: Podman, ref: str) -> float:
    size = podman("image", "inspect", ref, "--format", "{{.Size}}").stdout.strip()
    return round(int(size) / 1e6, 1)


def run_flags() -> list[str]:
    return [*ulimit_flags()]


def mesos_env(port: int, app: Path = REFERENCE_APP) -> dict[str, str]:
    """What Mesos 1.1 passed for the reference app (`--marathon-version 1.4 --mesos-env`), on loopback."""
    done = subprocess.run(
        [sys.executable, "-m", "entrypoint", "env", "--clean-env", "--marathon-app", str(app),
         "--marathon-version", "1.4", "--mesos-env", "--host", "127.0.0.1", "--ports", str(port),
         "--format", "json"],
        capture_output=True, text=True, timeout=30, check=True, stdin=subprocess.DEVNULL, cwd=ROOT)
    env: dict[str, str] = json.loads(done.stdout)
    env["BIND_ADDRESS"] = "127.0.0.1"  # loopback only: the container shares the host network
    return env


def env_flags(env: dict[str, str]) -> list[str]:
    return [flag for name, value in sorted(env.items()) for flag in ("-e", f"{name}={value}")]


def memory_cgroup(podman: Podman, name: str) -> Path:
    """The running container's cgroup v1 memory directory, as the host sees it.

    Its figures are read from outside on purpose: a `podman exec cat ...` runs
    `runc init` (a Go program) inside the container's cgroup, and that probe
    alone raised the recorded peak (`memory.max_usage_in_bytes`) by ~2.5 MiB.
    """
    pid = podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    for line in Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8").splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return CGROUP_V1_MEMORY / path.lstrip("/")
    raise Unavailable(f"container {name} (pid {pid}) is in no cgroup v1 memory group")


def read_cgroup_int(directory: Path, name: str) -> int:
    return int((directory / name).read_text(encoding="utf-8").split()[0])


class NoAnswer(Exception):
    """A container that stopped, or never answered HTTP in time: why, its exit code and its logs."""

    def __init__(self, why: str, code: str, logs: str) -> None:
        super().__init__(f"{why}:\n{logs}")
        self.code = code
        lines = logs.strip().splitlines()
        self.last_line = lines[-1] if lines else ""


def wait_http(podman: Podman, name: str, port: int, timeout: float = 20, interval: float = 0.1) -> str:
    """The body of the first HTTP answer on the loopback ``port``; :class:`NoAnswer` if the container
    stops first or ``timeout`` seconds pass."""
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
                body: str = resp.read().decode()
                return body
        except OSError as exc:
            last = str(exc)
        if podman("inspect", name, "--format", "{{.State.Running}}").stdout.strip() != "true":
            code = podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip()
            raise NoAnswer("container stopped early", code, container_logs(podman, name))
        time.sleep(interval)
    raise NoAnswer(f"no HTTP answer on port {port}: {last}", "", container_logs(podman, name))


def container_logs(podman: Podman, name: str) -> str:
    done = podman("logs", name, check=False, timeout=30)
    return done.stdout + done.stderr
