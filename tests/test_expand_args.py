"""`--expand-args`: the command's ARGs through the templates' own engine.

The pure function against bash (an unquoted here-document, as the shell
syntax's differential test does) and against ``render_shell`` itself; then
`run --expand-args` as PID 1 of a real PID namespace (variables from the
environment, env files and NAME_FILE secrets; errors name the position and
the variable, nothing starts; PID 1 never imports the renderer); then
``check --marathon-app APP.json --expand-args``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoint.errors import ArgumentErrors
from entrypoint.render.args import expand_args, expand_words
from entrypoint.render.shell import render_shell
from tests.pid1_helpers import (
    Runtime,
    base_env,
    needs_ns,
    prog,
    read_lines,
    run_ns,
    start_markers,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

ENV = {"PORT0": "31000", "HOST": "agent-1", "EMPTY": "", "SPACED": "a b  *", "DOLLAR": "$HOST"}
WORDS = ["--port", "$PORT0", "--bind=${HOST}:${PORT0}", "${MISSING:-dflt}", "${EMPTY:-was empty}",
         "${EMPTY-kept empty}", "${HOST:+has host}", "$SPACED", "$DOLLAR", "pre${PORT0}post", "",
         "${MISSING-${HOST:-x}}", "a}b", "*", "'$HOST'", '"$HOST"']


# -- the pure function ------------------------------------------------------------------

def test_each_word_is_what_the_template_engine_gives() -> None:
    assert expand_words(WORDS, ENV) == [render_shell(w, ENV, strict=True) for w in WORDS]


ASSIGNING = ["${X:=v}", "$X", "${X:-none}", "${Y=}", "[${Y-unset}]", "${PORT0:=9}", "${X:+set}"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_assignments_hold_for_the_words_after_them_as_in_bash() -> None:
    """``cmd ${X:=v} $X`` is ``cmd v v`` on a shell command line; the arguments are one command line."""
    script = 'printf "%s\\0" ' + " ".join(f'"{w}"' for w in ASSIGNING)
    done = subprocess.run(["bash", "-c", script], env=ENV, capture_output=True, timeout=20, check=True)
    from_bash = done.stdout.decode().split("\0")[:-1]
    assert expand_words(ASSIGNING, ENV) == from_bash == ["v", "v", "v", "", "[]", "31000", "set"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_each_word_is_what_bash_gives() -> None:
    """One word each, no field splitting or globbing, values not expanded again (bash's here-doc)."""
    delim = "END_OF_WORD_7Q"
    script = "".join(f"cat <<{delim}\n{w}\n{delim}\nprintf '\\0'\n" for w in WORDS)
    done = subprocess.run(["bash", "-c", script], env=ENV, capture_output=True, timeout=20, check=True)
    from_bash = [chunk[:-1] for chunk in done.stdout.decode().split("\0")[:-1]]  # each ends in the newline
    assert expand_words(WORDS, ENV) == from_bash


def test_dollar_dollar_is_a_literal_dollar_and_command_is_untouched() -> None:
    assert expand_args(["$CMD", "$$PORT0", "$$", "cost: 5$"], ENV) == ["$CMD", "$PORT0", "$", "cost: 5$"]
    assert expand_args(["only-command"], ENV) == ["only-command"]


def test_problems_name_position_and_variable_all_at_once() -> None:
    with pytest.raises(ArgumentErrors) as caught:
        expand_args(["app", "--port", "$PORT1", "ok", "x${NEED:?set NEED}", "${A}${B}"], ENV)
    lines = str(caught.value).splitlines()
    assert lines == [
        "argument 2 ('$PORT1'), column 1: PORT1: not set",
        "argument 4 ('x${NEED:?set NEED}'), column 2: NEED: set NEED",
        "argument 5 ('${A}${B}'), column 1: A: not set",
        "argument 5 ('${A}${B}'), column 5: B: not set",
    ]
    assert [(e.position, e.variable) for e in caught.value.errors] == [(2, "PORT1"), (4, "NEED"), (5, "A"),
                                                                       (5, "B")]


@pytest.mark.parametrize(("word", "message"), [
    ("${PORT0", "unterminated ${"),
    ("${X:-$(id)}", "command substitution $(...) is not supported in a word"),
    ("${#PORT0-x}", "unsupported parameter expansion"),
    ("${EMPTY:?}", "EMPTY: parameter null or not set"),
])
def test_syntax_errors_are_the_engines(word: str, message: str) -> None:
    with pytest.raises(ArgumentErrors) as caught:
        expand_args(["app", word], ENV)
    assert str(caught.value).startswith(f"argument 1 ({word!r}), column ")
    assert message in str(caught.value)


def test_secret_files_resolve_like_in_templates(tmp_path: Path) -> None:
    from entrypoint.context.sources import Environment

    (tmp_path / "pw").write_text("s3cr3t\n")
    env = Environment({"DB_PASSWORD_FILE": str(tmp_path / "pw"), "GONE_FILE": str(tmp_path / "nope")})
    assert expand_args(["app", "--password=$DB_PASSWORD"], env) == ["app", "--password=s3cr3t"]
    with pytest.raises(ArgumentErrors) as caught:
        expand_args(["app", "$GONE"], env)
    assert "argument 1 ('$GONE'): GONE_FILE points to" in str(caught.value)
    assert caught.value.errors[0].variable == "GONE_FILE"


# -- run --expand-args as PID 1 ----------------------------------------------------------

def _argv_of(done: subprocess.CompletedProcess[bytes]) -> list[str]:
    assert done.returncode == 0, done.stderr
    argv: list[str] = json.loads(done.stdout)["argv"]
    return argv[2:]  # after the interpreter and the script


@needs_ns
def test_run_expands_args_from_env_env_files_and_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("NAME_FROM_FILE=from-file\n")
    (tmp_path / "token").write_text("tok\n")
    env = base_env(PORT0="31000", TOKEN_FILE=str(tmp_path / "token"))
    done = run_ns(["--expand-args", "--env-file", str(env_file), "--", *prog("echo_all.py"),
                   "--port", "$PORT0", "${NAME_FROM_FILE}", "--token=$TOKEN", "$$PORT0",
                   "${HOST:-localhost}"],
                  env=env)
    assert _argv_of(done) == ["--port", "31000", "from-file", "--token=tok", "$PORT0", "localhost"]


@needs_ns
def test_run_without_the_option_passes_args_verbatim() -> None:
    done = run_ns(["--", *prog("echo_all.py"), "$PORT0", "${X:?}"], env=base_env(PORT0="1"))
    assert _argv_of(done) == ["$PORT0", "${X:?}"]
    done = run_ns(["--", *prog("echo_all.py"), "$PORT0"], env=base_env(PORT0="1", ENTRYPOINT_EXPAND_ARGS="1"))
    assert _argv_of(done) == ["1"]


@needs_ns
def test_expanded_once_then_signalled_and_restarted_with_the_same_args(tmp_path: Path) -> None:
    """Expanded before the start; every restart gets the same argv; TERM from outside ends it."""
    out = tmp_path / "out"
    script = 'echo "run $0 $1"; [ -e "$2" ] && exec sleep 60; touch "$2"; exit 1'
    with out.open("wb") as f, Runtime(["--expand-args", "--restart", "on-failure", "--restart-delay", "0.01",
                                       "--", "/bin/sh", "-c", script, "${PORT0}", "--v=$V",
                                       str(tmp_path / "seen")],
                                      stdout=f, env=base_env(PORT0="31000", V="1")) as rt:
        wait_until(lambda: len(read_lines(out)) == 2, 15, "the restart")
        rt.signal(signal.SIGTERM)
        assert rt.wait(15) == 128 + signal.SIGTERM
    assert read_lines(out) == ["run 31000 --v=1", "run 31000 --v=1"]



@needs_ns
# After `/bin/sh -c SCRIPT` (arguments 1 and 2), the arguments under test start at 3.
@pytest.mark.parametrize(("args", "lines"), [
    (["--port", "$PORT1"], ["argument 4 ('$PORT1'), column 1: PORT1: not set"]),
    (["${DB_URL:?set DB_URL in the app definition}"],
     ["argument 3 ('${DB_URL:?set DB_URL in the app definition}'), column 1: DB_URL: "
      "set DB_URL in the app definition"]),
    (["$A", "ok", "$B"], ["argument 3 ('$A'), column 1: A: not set",
                          "argument 5 ('$B'), column 1: B: not set"]),
])
def test_bad_argument_is_78_naming_it_and_nothing_starts(tmp_path: Path, args: list[str],
                                                         lines: list[str]) -> None:
    start, dest, marker = start_markers(tmp_path, "port=${PORT0:-1}\n")
    ran = tmp_path / "app-ran"
    done = run_ns(["--expand-args", *start, "--", "/bin/sh", "-c", f'touch {ran}', *args], env=base_env())
    assert done.returncode == 78, done.stderr
    assert done.stderr.decode().splitlines() == [f"[entrypoint] error: {line}" for line in lines]
    assert not dest.exists() and not marker.exists() and not ran.exists()


@needs_ns
def test_pid1_never_imports_the_renderer(tmp_path: Path) -> None:
    """An audit hook records each import with the pid that made it; PID 1 is pid 1.

    Every issue-12 start option is on: none of them may pull the context or render layers into PID 1.
    """
    record = tmp_path / "imports"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\n"
        f"def _hook(event, args, _path={str(record)!r}):\n"
        "    if event == 'import':\n"
        "        with open(_path, 'a') as f:\n"
        "            f.write(f'{os.getpid()} {args[0]}\\n')\n"
        "sys.addaudithook(_hook)\n")
    (tmp_path / "secret").write_text("x\n")
    env = base_env(PORT0="31000", DB_PASSWORD_FILE=str(tmp_path / "secret"))
    env["PYTHONPATH"] = f"{site}{os.pathsep}{env['PYTHONPATH']}"
    done = run_ns(["--expand-args", "--hooks-dir", "/nonexistent", "--templates-dir", "/nonexistent",
                   "--user", "nobody", "--secret", "DB_PASSWORD", "--termination-log", str(tmp_path / "tl"),
                   "--", "/bin/echo", "$PORT0"], env=env)
    assert (done.returncode, done.stdout) == (0, b"31000\n"), done.stderr
    by_pid: dict[str, set[str]] = {}
    for line in read_lines(record):
        pid, _, name = line.partition(" ")
        by_pid.setdefault(pid, set()).add(name)
    assert {"entrypoint.supervise.loop", "entrypoint.supervise.parts.user",
            "entrypoint.supervise.steps.secrets", "entrypoint.supervise.steps.termlog",
            "entrypoint.context.secretfile"} <= by_pid["1"]
    forked = set().union(*(names for pid, names in by_pid.items() if pid != "1"))
    assert "entrypoint.render.shell" in forked  # the expansion really ran, in the fork
    heavy = {"entrypoint.render.shell", "entrypoint.render.args", "entrypoint.context.sources", "pathlib",
             "dataclasses", "re", "pydantic", "jinja2"}
    assert heavy & by_pid["1"] == set()


# -- check --marathon-app APP.json --expand-args ------------------------------------------

def check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entrypoint", "check", "--clean-env", *map(str, args)],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def _app(tmp_path: Path, **fields: object) -> Path:
    app = tmp_path / "app.json"
    app.write_text(json.dumps({"id": "/demo", "portDefinitions": [{"port": 0}], **fields}))
    return app


def test_check_reports_each_bad_arg_of_the_app_definition(tmp_path: Path) -> None:
    app = _app(tmp_path, args=["--port", "$PORT0", "--db", "${DB_URL:?set DB_URL in env}", "$PORT9", "$$x"])
    done = check("--marathon-app", app, "--expand-args", "--templates-dir", tmp_path / "none")
    assert done.returncode == 78
    assert done.stderr.splitlines() == [
        f"{app}: args[3] ('${{DB_URL:?set DB_URL in env}}'), column 1: DB_URL: set DB_URL in env",
        f"{app}: args[4] ('$PORT9'), column 1: PORT9: not set",
        "entrypoint check: 2 problem(s) in 1 file(s), 0 template(s) checked",
    ]


def test_check_accepts_args_the_synthesised_environment_satisfies(tmp_path: Path) -> None:
    app = _app(tmp_path, args=["--port", "$PORT0", "--host=${HOST}", "--id=$MARATHON_APP_ID"],
               env={"DB_URL": "x"})
    done = check("--marathon-app", app, "--expand-args", "--templates-dir", tmp_path / "none")
    assert done.returncode == 0, done.stderr
    # Without --expand-args, args are not looked at.
    bad = _app(tmp_path, args=["$NOPE"])
    (tmp_path / "ok.template").write_text("ok\n")  # checking no template at all is an error (issue 13)
    assert check("--marathon-app", bad, tmp_path / "ok.template").returncode == 0


def test_check_expand_args_needs_an_app_and_string_args(tmp_path: Path) -> None:
    done = check("--expand-args", tmp_path)
    assert done.returncode == 2 and "needs --marathon-app" in done.stderr
    done = check("--marathon-app", _app(tmp_path, args=["--port", 8080]), "--expand-args", tmp_path)
    assert done.returncode == 78 and "field 'args[1]': must be a string, got a number" in done.stderr
