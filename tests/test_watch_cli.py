"""`render --watch` / `check --watch` with real file events (watchdog's inotify observer here).

Each test starts the real command, saves files the ways editors do, and polls
its output and the destination with deadlines; none sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pid1_helpers import base_env, wait_until

pytestmark = pytest.mark.timeout(60)


class Watcher:
    """``entrypoint render|check --watch ...`` with its output in files that the test polls."""

    def __init__(self, tmp: Path, *args: str, quiet: float = 0.05) -> None:
        self.out, self.err = tmp / "watch.out", tmp / "watch.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "entrypoint", *args, "--watch", "--watch-quiet", str(quiet)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=tmp, env=base_env())

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def runs(self) -> int:
        """Completed runs: the watch logs one 'watching' line after each."""
        return self.stderr().count("--watch: done;") + self.stderr().count("--watch: failed")

    def wait_runs(self, count: int, timeout: float = 15) -> None:
        wait_until(lambda: self.runs() >= count, timeout, f"run {count} (stderr: {self.stderr()[-800:]})")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            pytest.fail(f"watch did not stop on signal {signum}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    made: list[Watcher] = []
    yield made
    for watcher in made:
        watcher.close()


def start(watchers: list[Watcher], tmp: Path, *args: str, quiet: float = 0.05) -> Watcher:
    watcher = Watcher(tmp, *args, quiet=quiet)
    watchers.append(watcher)
    return watcher


def save_by_rename(path: Path, text: str) -> None:
    """An atomic-rename save (vim with backupcopy=no, most IDEs, Kubernetes volumes)."""
    temp = path.with_name(f".{path.name}.swp")
    temp.write_text(text)
    os.replace(temp, path)


def test_render_again_on_every_save_and_keep_dest_on_error(tmp_path: Path, watchers: list[Watcher]) -> None:
    template, dest = tmp_path / "app.conf.template", tmp_path / "app.conf"
    template.write_text("port=${PORT}\n")
    w = start(watchers, tmp_path, "render", "--strict", "--set", "PORT=8080", "app.conf.template:app.conf")
    w.wait_runs(1)
    assert dest.read_text() == "port=8080\n"

    template.write_text("port=${PORT}\nname=x\n")  # in-place save
    wait_until(lambda: dest.read_text() == "port=8080\nname=x\n", 10, "the in-place save rendered")

    template.write_text("port=${PORT}\nhost=${NO_SUCH_VARIABLE}\n")  # a mistake
    wait_until(lambda: "--watch: failed (exit 78)" in w.stderr(), 10, "the error printed")
    assert "app.conf.template:2:" in w.stderr() and "NO_SUCH_VARIABLE" in w.stderr()
    assert dest.read_text() == "port=8080\nname=x\n", "a failed render must leave DEST as it was"
    assert w.proc.poll() is None, "an error must not end the watch"

    save_by_rename(template, "port=${PORT}\nfixed\n")
    wait_until(lambda: dest.read_text() == "port=8080\nfixed\n", 10, "the rename save rendered")
    assert w.stop(signal.SIGTERM) == 0
    assert "Traceback" not in w.stderr()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], "temp files left"


def test_burst_of_saves_is_one_render(tmp_path: Path, watchers: list[Watcher]) -> None:
    """An editor's save is several writes (truncate, write, chmod, backup rename): one render."""
    template, dest = tmp_path / "app.conf.template", tmp_path / "app.conf"
    template.write_text("v=0\n")
    w = start(watchers, tmp_path, "render", "app.conf.template:app.conf", quiet=1.0)
    w.wait_runs(1)
    backup = tmp_path / "app.conf.template~"
    for i in range(1, 21):
        os.replace(template, backup)  # vim's default: keep the old file as a backup ...
        template.write_text(f"v={i}\n")  # ... write the new one ...
        os.chmod(template, 0o644)
        backup.unlink()  # ... and drop the backup
    w.wait_runs(2)
    assert dest.read_text() == "v=20\n"
    # the quiet period has passed once the second run is logged; nothing else may follow
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert w.runs() == 2, w.stderr()
        time.sleep(0.1)
    assert w.stop(signal.SIGINT) == 0


def test_slow_in_place_save_is_rendered_once_complete(tmp_path: Path, watchers: list[Watcher]) -> None:
    """Truncate, part of the text, a pause longer than the quiet period, the rest, close: one render,
    of the whole file (inotify reports the close; the pause is the scenario, not synchronisation)."""
    template, dest = tmp_path / "app.conf.template", tmp_path / "app.conf"
    template.write_text("port=${PORT}\n")
    w = start(watchers, tmp_path, "render", "--strict", "--set", "PORT=1", "app.conf.template:app.conf")
    w.wait_runs(1)
    with template.open("w") as f:  # truncated: empty now, and an unterminated ${ after the first part
        f.write("port=${PO")
        f.flush()
        time.sleep(0.5)  # ten quiet periods with the file open for writing
        f.write("RT}\nmore=yes\n")
    w.wait_runs(2)
    assert dest.read_text() == "port=1\nmore=yes\n"
    assert "failed" not in w.stderr(), w.stderr()
    assert w.stop() == 0


def test_env_file_and_marathon_app_changes_render_again(tmp_path: Path, watchers: list[Watcher]) -> None:
    (tmp_path / "app.conf.template").write_text("db=${DB} port=${PORT0} cpus=${MARATHON_APP_RESOURCE_CPUS}\n")
    env_file = tmp_path / "dev.env"
    env_file.write_text("DB=one\n")
    app = tmp_path / "app.json"
    app.write_text(json.dumps({"id": "/web", "cpus": 0.5, "mem": 32, "portDefinitions": [{"port": 0}]}))
    dest = tmp_path / "app.conf"
    w = start(watchers, tmp_path, "render", "--clean-env", "--env-file", "dev.env",
              "--marathon-app", "app.json", "--ports", "31000", "app.conf.template:app.conf")
    w.wait_runs(1)
    assert dest.read_text() == "db=one port=31000 cpus=0.5\n"
    save_by_rename(env_file, "DB=two\n")
    wait_until(lambda: dest.read_text() == "db=two port=31000 cpus=0.5\n", 10, "the env file change")
    app.write_text(json.dumps({"id": "/web", "cpus": 2, "mem": 32, "portDefinitions": [{"port": 0}]}))
    wait_until(lambda: dest.read_text() == "db=two port=31000 cpus=2.0\n", 10, "the app definition change")
    app.write_text("{ not json")  # a broken app definition is an error, not the end
    wait_until(lambda: "app.json" in w.stderr().split("cpus=2.0")[-1] and w.runs() >= 4, 10, "the JSON error")
    assert dest.read_text() == "db=two port=31000 cpus=2.0\n" and w.proc.poll() is None
    assert w.stop() == 0


def test_template_that_appears_later_and_stdout_output(tmp_path: Path, watchers: list[Watcher]) -> None:
    w = start(watchers, tmp_path, "render", "--set", "X=1", "later/x.template")
    w.wait_runs(1)
    assert "template not found" in w.stderr() and "--watch: failed (exit 78)" in w.stderr()
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "x.template").write_text("x=${X}\n")
    wait_until(lambda: w.stdout() == "x=1\n", 10, "the new template rendered to stdout")
    (tmp_path / "later" / "x.template").write_text("x=${X}${X}\n")
    wait_until(lambda: w.stdout() == "x=1\nx=11\n", 10, "stdout printed again")
    assert w.stop() == 0


def test_templates_directory_new_file_and_outputs_do_not_retrigger(tmp_path: Path,
                                                                   watchers: list[Watcher]) -> None:
    """Directory mode writing into the templates directory itself: its own outputs are not changes."""
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "a.conf.template").write_text("a=${A}\n")
    w = start(watchers, tmp_path, "render", "--set", "A=1", "tpl:tpl")
    w.wait_runs(1)
    assert (tdir / "a.conf").read_text() == "a=1\n"
    staging = tmp_path / "staging" / "sub"
    staging.mkdir(parents=True)
    (staging / "b.conf.template").write_text("b=${A}\n")
    os.rename(staging, tdir / "sub")  # a new subdirectory with a template: one event
    w.wait_runs(2)
    assert (tdir / "sub" / "b.conf").read_text() == "b=1\n"
    (tdir / "notes.txt").write_text("not a template\n")
    # Neither that file nor the run's own outputs (a.conf, sub/b.conf, their temp files) are changes:
    # a window in which no run may start (the quiet period is 0.05 s).
    time.sleep(0.5)
    assert w.runs() == 2, w.stderr()
    assert w.stop() == 0


def test_check_watch_reports_each_time_and_ends_on_sigint(tmp_path: Path, watchers: list[Watcher]) -> None:
    template = tmp_path / "app.conf.template"
    template.write_text("port=${PORT}\n")
    w = start(watchers, tmp_path, "check", "--set", "PORT=1", "app.conf.template")
    wait_until(lambda: "1 template(s) OK" in w.stdout(), 10, "the first check")
    template.write_text("port=${PORT}\nhost=${HOST_MISSING}\n")
    wait_until(lambda: "app.conf.template:2:6: HOST_MISSING" in w.stderr(), 10, "the problem reported")
    template.write_text("port=${PORT}\n")
    wait_until(lambda: w.stdout().count("1 template(s) OK") == 2, 10, "the second OK")
    assert w.stop(signal.SIGINT) == 0


@pytest.mark.parametrize("command", ["render", "check"])
def test_missing_watchdog_names_the_extra(tmp_path: Path, command: str) -> None:
    (tmp_path / "a.template").write_text("a\n")
    code = ("import sys; sys.modules['watchdog'] = None; from entrypoint.cli import main; "
            f"sys.exit(main(['{command}', '--watch', 'a.template']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          cwd=tmp_path, env=base_env())
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"entrypoint {command} --watch needs watchdog, which is not installed: " \
           "pip install 'entrypoint[watch]'" in done.stderr
