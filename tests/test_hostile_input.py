"""Hostile and broken input (issue 8): injection, sandbox escapes, paths, malformed environment.

Every CLI case checks the same contract: exit 78, exactly one stderr line
``[entrypoint] error: ...`` naming the file/variable, no traceback, every
pre-existing file byte-identical, and no ``.entrypoint-*`` temp file left.
Rows of docs/reliability.md name these tests.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoint.context.choices import MarathonOptions
from entrypoint.context.marathon import environment_for_options
from entrypoint.errors import ConfigError, EntrypointError, TemplateError, TemplateErrors
from entrypoint.render.engine import render_template
from entrypoint.render.jinja import render_jinja
from entrypoint.render.model import Syntax

VECTORS = Path(__file__).parent / "data" / "marathon-env-vectors.jsonl"


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ENTRYPOINT_STATE_FILE": ""}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "entrypoint", *args], cwd=cwd, env=base,
                          capture_output=True, timeout=60, check=False)


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under root: file bytes and mode, link targets, other kinds by type (never opened)."""
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st_ = path.lstat()
            key = str(path.relative_to(root))
            if stat.S_ISLNK(st_.st_mode):
                found[key] = ("link", os.readlink(path))
            elif stat.S_ISREG(st_.st_mode):
                found[key] = ("file", path.read_bytes(), stat.S_IMODE(st_.st_mode))
            else:
                found[key] = ("other", stat.S_IFMT(st_.st_mode))
    return found


def assert_refused(result: subprocess.CompletedProcess[bytes], root: Path, before: dict[str, object],
                   *words: str) -> str:
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 78, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("[entrypoint] error: "), err
    for word in words:
        assert word in lines[0], err
    assert snapshot(root) == before, "a file was changed, created or removed"
    assert not [p for p in root.rglob("*") if p.name.startswith(".entrypoint-")]
    return lines[0]


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


# =========================================================================== injection

CANARY_NAME = "CANARY"


def payload_value(canary: Path) -> str:
    return (f"${{OTHER}} $OTHER $(touch {canary}) `touch {canary}` {{{{ 7*7 }}}} "
            f"{{% include '/etc/passwd' %}} "
            f"{{{{ cycler.__init__.__globals__.os.system('touch {canary}') }}}} $$ ${{X:?boom}} \\n '\" end")


@pytest.mark.parametrize("source", ["set", "env-file", "marathon-app-env"])
@pytest.mark.parametrize("syntax", ["shell", "envsubst", "jinja"])
def test_values_are_inserted_literally_in_every_syntax(tmp_path: Path, syntax: str, source: str) -> None:
    canary = tmp_path / CANARY_NAME
    value = payload_value(canary)
    text = {"jinja": "v={{ env.V }}|{{ getenv('V') }}\n", "shell": "v=${V}|${U:-$V}\n",
            "envsubst": "v=${V}|$V\n"}[syntax]
    write(tmp_path / "t.tmpl", text)
    context = ["--clean-env", "--set", "OTHER=leak", "--set", "X="]
    if source == "set":
        context += ["--set", f"V={value}"]
    elif source == "env-file":
        write(tmp_path / "v.env", "V='" + value + "'\n")
        context += ["--env-file", "v.env"]
    else:
        write(tmp_path / "app.json", json.dumps({"id": "/a", "env": {"V": value}}))
        context += ["--marathon-app", "app.json"]
    result = cli(["render", *context, "--syntax", syntax, "t.tmpl:out.conf"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.conf").read_text() == f"v={value}|{value}\n"
    assert not canary.exists()


INJECTION_TOKENS = ["${X}", "$X", "$(id)", "`id`", "{{ 7*7 }}", "{% if 1 %}", "{#", "$$", "${X:?e}", "}", "{",
                    "\n", "a", "é", "\x00"]
INJECTION_TEXT = st.lists(st.sampled_from(INJECTION_TOKENS), max_size=12).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(INJECTION_TEXT | st.text(max_size=20))
def test_any_value_is_inserted_verbatim(value: str) -> None:
    """Never expanded twice: a value's own syntax is inert in all three syntaxes."""
    env = {"V": value, "X": "expanded"}
    cases = [
        (Syntax.SHELL, "${V}|$V|${U:-$V}|${V:+${V}}", "|".join([value] * 4) if value else "||"),
        (Syntax.ENVSUBST, "${V}|$V", f"{value}|{value}"),
        (Syntax.JINJA, "{{ env.V }}|{{ getenv('V') }}|{{ env['V'] }}", "|".join([value] * 3)),
    ]
    for syntax, template, expected in cases:
        if syntax is Syntax.SHELL and not value:
            expected = "|||"
        out = render_template(template.encode(), filename="t", syntax=syntax, env=env)
        assert out == expected.encode("utf-8", "surrogateescape"), (syntax, template)


# =========================================================================== the Jinja sandbox


def escape_attempts(canary: Path) -> list[str]:
    run = f"system('touch {canary}')"
    return [
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
        f"{{{{ cycler.__init__.__globals__.os.{run} }}}}",
        f"{{{{ joiner.__init__.__globals__.os.{run} }}}}",
        f"{{{{ namespace.__init__.__globals__.os.{run} }}}}",
        f"{{{{ lipsum.__globals__['os'].{run} }}}}",
        f"{{{{ lipsum.__globals__.__builtins__.__import__('os').{run} }}}}",
        f"{{{{ range.__init__.__globals__['os'].{run} }}}}",
        "{{ self._TemplateReference__context }}",
        f"{{{{ self._TemplateReference__context.cycler.__init__.__globals__.os.{run} }}}}",
        "{{ self.__init__.__globals__ }}",
        "{{ getenv.__globals__ }}",
        "{{ jvm_heap.__globals__['os'] }}",
        "{{ getenv.__code__ }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ '{0.__init__.__globals__}'.format(getenv) }}",
        "{{ '{0.__class__.__mro__}'.format(env) }}",
        "{{ '{0.__class__}'.format_map({'a': 1}) }}",
        "{{ '%s'|format(().__class__) }}",
        "{{ ()|attr('__class__') }}",
        "{{ getenv|attr('__globals__') }}",
        "{{ (()|attr('__class__')|attr('__base__')|attr('__subclasses__'))() }}",
        "{% set x = namespace() %}{{ x.__init__.__globals__ }}",
        "{{ env.__class__.__mro__ }}",
        "{{ orchestrator.__init__.__globals__ }}",
        "{{ orchestrator._env }}",
        "{{ marathon.app.__class__.__mro__ }}",
        "{{ mesos._marathon }}",
        "{{ orchestrator.jvm_heap.__func__.__globals__ }}",
        "{{ config }}",
        "{{ request.application.__globals__ }}",
        "{{ range(10**9)|list }}",
    ]


def test_jinja_sandbox_escape_attempts_are_refused_and_nothing_runs(tmp_path: Path) -> None:
    canary = tmp_path / CANARY_NAME
    env = {"MARATHON_APP_ID": "/a", "PATH": "/usr/bin:/bin"}
    for text in escape_attempts(canary):
        with pytest.raises((TemplateError, TemplateErrors)) as info:
            render_jinja(text, env, filename="t.j2")
        errors = info.value.errors if isinstance(info.value, TemplateErrors) else [info.value]
        for error in errors:
            assert isinstance(error, TemplateError) and error.line == 1 and error.column, (text, error)
        # lenient mode: still refused, or rendered inert (nothing from Python's internals shows)
        try:
            out = render_jinja(text, env, filename="t.j2", strict=False)
        except TemplateError:
            pass
        else:
            leaks = ("<class", "<function", "<module", "os.", "builtins")
            assert not any(w in out for w in leaks), (text, out)
        assert not canary.exists(), text


@pytest.mark.parametrize("index", [2, 6, 9, 15, 21])
def test_sandbox_escape_through_the_cli(tmp_path: Path, index: int) -> None:
    canary = tmp_path / CANARY_NAME
    write(tmp_path / "evil.j2", "line 1\n" + escape_attempts(canary)[index] + "\n")
    write(tmp_path / "out.conf", "old\n")
    before = snapshot(tmp_path)
    line = assert_refused(cli(["render", "--clean-env", "evil.j2:out.conf"], tmp_path), tmp_path, before,
                          "evil.j2:2:")
    assert "refused by the sandbox" in line or "has no attribute" in line
    assert not canary.exists()


@pytest.mark.parametrize(
    "statement",
    ["{% include '../secret.txt' %}", "{% include '/etc/passwd' %}", "{% import '../secret.txt' as s %}",
     "{% extends '../secret.txt' %}", "{% include 'sub/../../secret.txt' %}"],
)
def test_jinja_cannot_load_files_outside_its_directory(tmp_path: Path, statement: str) -> None:
    write(tmp_path / "secret.txt", "TOP SECRET\n")
    write(tmp_path / "t" / "a.conf.j2", statement + "\n")
    write(tmp_path / "out" / "a.conf", "old\n")
    before = snapshot(tmp_path)
    result = cli(["render", "--clean-env", "--templates-dir", "t", "--output-dir", "out"], tmp_path)
    assert_refused(result, tmp_path, before, "a.conf.j2:1:", "not found")
    assert b"TOP SECRET" not in result.stderr + result.stdout


# =========================================================================== paths


def _dir_loop(root: Path) -> list[str]:
    write(root / "t" / "sub" / "a.conf.template", "a\n")
    (root / "t" / "sub" / "loop").symlink_to("..")
    return ["--templates-dir", "t", "--output-dir", "out"]


def _self_loop(root: Path) -> list[str]:
    (root / "t").mkdir()
    (root / "t" / "self.template").symlink_to("self.template")
    return ["--templates-dir", "t", "--output-dir", "out"]


def _two_file_loop(root: Path) -> list[str]:
    (root / "t").mkdir()
    (root / "t" / "x.template").symlink_to("y.template")
    (root / "t" / "y.template").symlink_to("x.template")
    return ["--templates-dir", "t", "--output-dir", "out"]


def _dest_dir_symlinked_out(root: Path) -> list[str]:
    (root / "outside").mkdir()
    (root / "out" / "evil").symlink_to("../outside")
    write(root / "t" / "evil" / "b.conf.template", "b\n")
    return ["--templates-dir", "t", "--output-dir", "out"]


def _dest_file_symlinked_out(root: Path) -> list[str]:
    write(root / "outside" / "victim", "victim\n")
    (root / "out" / "a.conf").unlink()
    (root / "out" / "a.conf").symlink_to("../outside/victim")
    write(root / "t" / "a.conf.template", "pwned\n")
    return ["--templates-dir", "t", "--output-dir", "out"]


def _template_is_directory(root: Path) -> list[str]:
    (root / "t" / "d.conf.template").mkdir(parents=True)
    return ["--templates-dir", "t", "--output-dir", "out"]


def _template_is_fifo_in_dir(root: Path) -> list[str]:
    (root / "t").mkdir()
    os.mkfifo(root / "t" / "f.conf.template")
    return ["--templates-dir", "t", "--output-dir", "out"]


def _template_is_fifo(root: Path) -> list[str]:
    os.mkfifo(root / "fifo.template")
    return ["fifo.template:out/a.conf"]


def _template_is_dev_zero(root: Path) -> list[str]:
    return ["/dev/zero:out/a.conf"]


def _dangling_template(root: Path) -> list[str]:
    (root / "t").mkdir()
    (root / "t" / "gone.template").symlink_to("nowhere")
    return ["--templates-dir", "t", "--output-dir", "out"]


def _dest_is_directory(root: Path) -> list[str]:
    write(root / "a.template", "a\n")
    return ["a.template:out"]


def _dest_dir_missing(root: Path) -> list[str]:
    write(root / "a.template", "a\n")
    return ["a.template:out/no/such/a.conf"]


def _one_good_one_bad(root: Path) -> list[str]:
    write(root / "t" / "a.conf.template", "new\n")
    (root / "t" / "b.conf.template").mkdir()
    return ["--templates-dir", "t", "--output-dir", "out"]


PATH_CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "symlink-loop-dir": (_dir_loop, "symlink loop"),
    "symlink-loop-self": (_self_loop, "symlink loop"),
    "symlink-loop-two-files": (_two_file_loop, "symlink loop"),
    "dest-dir-symlinked-outside": (_dest_dir_symlinked_out, "outside the output directory"),
    "dest-file-symlinked-outside": (_dest_file_symlinked_out, "outside the output directory"),
    "template-is-directory": (_template_is_directory, "template is a directory"),
    "template-is-fifo-in-dir": (_template_is_fifo_in_dir, "template is a FIFO"),
    "template-is-fifo": (_template_is_fifo, "template is a FIFO"),
    "template-is-char-device": (_template_is_dev_zero, "not a regular file"),
    "dangling-template-symlink": (_dangling_template, "dangling symlink"),
    "dest-is-directory": (_dest_is_directory, "destination is a directory"),
    "dest-dir-missing": (_dest_dir_missing, "does not exist"),
    "all-or-nothing": (_one_good_one_bad, "template is a directory"),
}


@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_path_attacks_are_refused_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    write(tmp_path / "out" / "a.conf", "old a\n")
    make, words = PATH_CASES[case]
    args = make(tmp_path)
    before = snapshot(tmp_path)
    for command in ("render", "run"):  # run: the same step, in PID 1's render fork
        flag = ["--template"] if command == "run" and ":" in args[0] else []
        context = [] if command == "run" else ["--clean-env"]
        tail = ["--", "true"] if command == "run" else []
        assert_refused(cli([command, *context, *flag, *args, *tail], tmp_path), tmp_path, before, words)
    check_args = [a.partition(":")[0] for a in args] if ":" in args[0] else args
    result = cli(["check", "--clean-env", *check_args], tmp_path)
    if case not in ("dest-dir-symlinked-outside", "dest-file-symlinked-outside", "dest-is-directory",
                    "dest-dir-missing"):  # check writes nothing, so destinations are not its concern
        assert result.returncode == 78 and words in result.stderr.decode(), result.stderr
    assert "Traceback" not in result.stderr.decode()
    assert snapshot(tmp_path) == before


def test_explicit_dest_symlink_is_replaced_not_written_through(tmp_path: Path) -> None:
    """An explicit SRC:DEST is the operator's own path; the rename replaces a symlink itself."""
    write(tmp_path / "outside" / "victim", "victim\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to("../outside/victim")
    write(tmp_path / "a.template", "new\n")
    result = cli(["render", "--clean-env", "a.template:out/link"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "outside" / "victim").read_text() == "victim\n"
    assert not (tmp_path / "out" / "link").is_symlink()
    assert (tmp_path / "out" / "link").read_text() == "new\n"


# =========================================================================== malformed environment

JINJA_READERS = {
    "ports": "{{ orchestrator.ports[0] }}",
    "named": "{{ orchestrator.ports.http }}",
    "port_for": "{{ orchestrator.port_for(8080) }}",
    "resources": "{{ orchestrator.resources.mem }}",
    "heap": "{{ jvm_heap() }}",
    "labels": "{{ orchestrator.labels | list | join(',') }}",
    "port": "{{ marathon.port }}",
    "assigned": "{{ marathon.assigned_ports | join(',') }}",
    "role": "{{ marathon.enforce_group_role }}",
    "gpus": "{{ orchestrator.resources.gpus }}",
}


@pytest.mark.parametrize(
    ("name", "value", "reader"),
    [
        ("PORT0", "abc", "ports"),
        ("PORT0", "-1", "ports"),
        ("PORT0", "70000", "ports"),
        ("PORT0", "0", "ports"),
        ("PORT0", "", "ports"),
        ("PORT0", "8O", "ports"),
        ("PORT0", "\u0663\u0663", "ports"),  # Arabic-Indic digits: str.isdigit() says yes
        ("PORT_HTTP", "http", "named"),
        ("PORT_8080", "99999", "port_for"),
        ("PORT", "x", "port"),
        ("PORTS", "31000,x", "assigned"),
        ("PORTS", ",", "assigned"),
        ("MARATHON_APP_RESOURCE_MEM", "lots", "resources"),
        ("MARATHON_APP_RESOURCE_MEM", "-5", "heap"),
        ("MARATHON_APP_RESOURCE_MEM", "nan", "heap"),
        ("MARATHON_APP_RESOURCE_MEM", "inf", "resources"),
        ("MARATHON_APP_RESOURCE_MEM", "1e400", "resources"),
        ("MARATHON_APP_RESOURCE_GPUS", "1.5", "gpus"),
        ("MARATHON_APP_ENFORCE_GROUP_ROLE", "maybe", "role"),
    ],
)
def test_malformed_orchestrator_values_stop_jinja_with_the_variable(tmp_path: Path, name: str, value: str,
                                                                    reader: str) -> None:
    write(tmp_path / "app.conf.j2", "x\n" + JINJA_READERS[reader] + "\n")
    write(tmp_path / "app.conf", "old\n")
    before = snapshot(tmp_path)
    result = cli(["render", "--clean-env", "--set", "MARATHON_APP_ID=/a", "--set", f"{name}={value}",
                  "app.conf.j2:app.conf"], tmp_path)
    assert_refused(result, tmp_path, before, "app.conf.j2:2:", name)


@pytest.mark.parametrize(
    "labels",
    ["  a  b\tc  ", "$(touch CANARY) `id` {{ 7*7 }}", "x" * 100_000, "é ü \u2028 \x1f", ",,, ;;;", ""],
)
def test_odd_label_lists_render(tmp_path: Path, labels: str) -> None:
    write(tmp_path / "l.j2", "{{ orchestrator.labels | list | join(' ') }}|"
                             "{{ orchestrator.labels.get('A', 'd') }}|"
                             "{{ orchestrator.labels.get('zz', 'd') }}")
    result = cli(["render", "--clean-env", "--set", "MARATHON_APP_ID=/a", "--set",
                  f"MARATHON_APP_LABELS={labels}", "--set", "MARATHON_APP_LABEL_A=va", "l.j2"], tmp_path)
    assert result.returncode == 0, result.stderr
    names, first, missing = result.stdout.decode().split("|")
    assert set(names.split(" ")) == {"A"} | set(labels.split())
    assert (first, missing) == ("va", "d")
    assert not (tmp_path / CANARY_NAME).exists()


ORCH_NAMES = ["PORT0", "PORT1", "PORT", "PORTS", "PORT_8080", "PORT_HTTP", "HOST",
              "MARATHON_APP_RESOURCE_MEM", "MARATHON_APP_RESOURCE_CPUS", "MARATHON_APP_RESOURCE_GPUS",
              "MARATHON_APP_LABELS", "MARATHON_APP_LABEL_A", "MARATHON_APP_ENFORCE_GROUP_ROLE",
              "MESOS_CHECKPOINT",
              "ENTRYPOINT_ENV_VARS_PREFIX", "NOMAD_CPU_CORES", "NOMAD_PORT_x", "NOMAD_MEMORY_LIMIT",
              "MEMORY_LIMIT", "CPU_LIMIT", "X_SERVICE_PORT", "X_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]
ORCH_VALUES = st.sampled_from(["abc", "-1", "70000", "0", "1e400", "nan", "inf", " 80 ", "\uff18\uff10",
                               "lots", "1,x", ",", "", " ", "a b  c", "$(id)", "{{x}}", "1" * 5000, "TRUE",
                               "maybe", "0-1,x", "3-1", "9" * 30]) | st.text(max_size=8)
ORCH_EXPRESSIONS = [*JINJA_READERS.values(), "{{ orchestrator.ports.get('x', 1) }}", "{{ mesos.checkpoint }}",
                    "{{ jvm_heap(default='1m') }}", "{{ nomad.resources.cpus }}", "{{ nomad.ports | list }}",
                    "{{ kubernetes.services }}", "{{ kubernetes.resources.mem }}", "{{ orchestrator.host }}",
                    "{{ orchestrator.ports.names }}", "{{ marathon.declared_ports }}"]


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(ORCH_NAMES), ORCH_VALUES, max_size=4),
       st.sampled_from(["MARATHON_APP_ID", "NOMAD_ALLOC_ID", "KUBERNETES_SERVICE_HOST", "NONE"]),
       st.lists(st.sampled_from(ORCH_EXPRESSIONS), min_size=1, max_size=3))
def test_any_orchestrator_values_render_or_fail_naming_a_variable(env: dict[str, str], kind: str,
                                                                   expressions: list[str]) -> None:
    env = {**env, kind: "/a"}
    text = "".join(expr + "\n" for expr in expressions)
    try:
        render_jinja(text, env, filename="t.j2")
    except (TemplateError, TemplateErrors) as exc:
        errors = exc.errors if isinstance(exc, TemplateErrors) else [exc]
        for error in errors:
            assert error.line is not None and "\n" not in error.message
            head = error.message.split(": ")[0]  # a context error reads "NAME='value': why"
            if "='" in head:
                assert head.split("=")[0] in ORCH_NAMES


# =========================================================================== app definitions


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"id": "/a",}', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),  # a byte-order mark, as json refuses it
        (b'{"id": "/a"} {}', "not valid JSON: Extra data"),
        (b'{"id": "/a", "cpus": ' + b"1" * 5000 + b"}", "not valid JSON: Exceeds the limit"),  # a traceback
        (b"[]", "must be a JSON object, not an array"),
        (b'"app"', "must be a JSON object, not a string"),
        (b"null", "must be a JSON object, not null"),
        (b"42", "must be a JSON object, not a number"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"id": "/a", "labels": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001, "nested too deeply"),
        (b'{"id": "/a\xff"}', "cannot read app definition"),
        (b'{"id": "/a", "container": {"docker": {"network": {}}}}', "container.docker.network"),
        (b'{"id": "/a", "container": {"docker": {"network": []}}}', "container.docker.network"),
        (b'{"id": "/a", "version": {}}', "'version'"),
        (b'{"id": "/a", "labels": []}', "'labels'"),
        (b'{"id": "/a", "mem": "lots"}', "'mem'"),
        (b'{"id": "/a", "mem": NaN}', "'mem'"),
        (b'{"id": "/a", "cpus": 1e999}', "'cpus'"),
        (b'{"id": "/a", "gpus": true}', "'gpus'"),
        (b'{"id": "/a", "portDefinitions": [{"port": 70000}]}', "out of range"),
        (b'{"id": "/a", "portDefinitions": [{"port": -1}]}', "out of range"),
        (b'{"id": "/a", "portDefinitions": {"port": 80}}', "must be an array"),
        (b'{"id": "/a", "env": {"X": ["list"]}}', "'env.X'"),
        (b'{"id": "/../etc"}', "'id'"),
    ],
)
def test_broken_app_definitions_exit_78_naming_the_file(tmp_path: Path, content: bytes, words: str) -> None:
    write(tmp_path / "app.json", content)
    write(tmp_path / "t.j2", "{{ env.MARATHON_APP_ID }}\n")
    write(tmp_path / "out.conf", "old\n")
    before = snapshot(tmp_path)
    for command in (["env"], ["render", "t.j2:out.conf"], ["check", "t.j2"]):
        result = cli([command[0], "--clean-env", "--marathon-app", "app.json", *command[1:]], tmp_path)
        assert_refused(result, tmp_path, before, "app.json", words)


def test_app_definition_from_a_device_is_bounded(tmp_path: Path) -> None:
    write(tmp_path / "out.conf", "old\n")
    before = snapshot(tmp_path)
    assert_refused(cli(["env", "--clean-env", "--marathon-app", "/dev/zero"], tmp_path), tmp_path, before,
                   "/dev/zero", "larger than")
    assert_refused(cli(["env", "--clean-env", "--env-file", "/dev/zero"], tmp_path), tmp_path, before,
                   "/dev/zero", "larger than")


def _valid_apps() -> list[dict[str, Any]]:
    return [json.loads(line)["app"] for line in VECTORS.read_text().splitlines() if line.strip()]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6)
    | st.sampled_from(["HOST", "BRIDGE", "USER", "DOCKER", "MESOS", "host", "container", "container/bridge",
                       "/x", "..", "2017-04-11T16:15:04.342Z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=6) | st.sampled_from(["port", "hostPort", "containerPort", "name", "mode", "type",
                                               "docker", "image", "network", "portMappings", "secret"]),
        inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_apps(draw: st.DrawFn) -> Any:
    app: Any = copy.deepcopy(draw(st.sampled_from(_valid_apps())))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(app)))
        value = draw(JSON_VALUES)
        if not path:
            app = value
            continue
        parent = app
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return app


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_apps(), st.sampled_from([None, [31000], [31000, None, 31001], [None]]),
       st.sampled_from(["1.4", "1.9", "1.10"]))
def test_mutated_app_definitions_give_an_environment_or_one_clean_error(
    tmp_path_factory: pytest.TempPathFactory, app: Any, ports: list[int | None] | None, version: str
) -> None:
    path = tmp_path_factory.mktemp("app", numbered=True) / "app.json"
    path.write_text(json.dumps(app))
    try:
        env = environment_for_options(MarathonOptions(app_path=path, ports=ports, version=version))
    except EntrypointError as exc:
        assert isinstance(exc, ConfigError) or exc.exit_code == 2
        assert "\n" not in str(exc) and str(exc)
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())


def test_mutated_app_definitions_through_the_cli(tmp_path: Path) -> None:
    """A sample of the mutations above, end to end: exit 0 or 78 with one line, never a traceback."""
    samples = [
        {"id": "/a", "container": {"docker": {"network": {"x": None}}}},
        {"id": "/a", "container": {"type": "DOCKER", "docker": {"image": 5}}},
        {"id": "/a", "networks": [{"mode": "container"}], "container": {"portMappings": [{"hostPort": "x"}]}},
        {"id": "/a", "networks": "host"},
        {"id": "/a", "portDefinitions": [None]},
        {"id": "/a", "labels": {"x" * (1 << 20): "v", "ok": "1"}},
        {"id": "/a", "env": {"BIG": "v" * (1 << 20)}},
        {"id": "/a", "version": "not a date"},
    ]
    for app in samples:
        write(tmp_path / "app.json", json.dumps(app))
        result = cli(["env", "--clean-env", "--marathon-app", "app.json"], tmp_path)
        err = result.stderr.decode()
        assert result.returncode in (0, 78) and "Traceback" not in err, (app, err)
        if result.returncode:
            assert len(err.splitlines()) == 1 and "app.json" in err, err


def test_megabyte_labels_are_dropped_as_marathon_does(tmp_path: Path) -> None:
    """Key >= 493 or value >= 512 characters: dropped silently (test_marathon_rules covers a 1 MB value)."""
    labels = {"k" * (1 << 20): "v", "big": "x" * (1 << 20), "edge": "y" * 511, "KEEP": "1"}
    labels.update({f"L{i}": "z" * 100 for i in range(2000)})
    write(tmp_path / "app.json", json.dumps({"id": "/a", "portDefinitions": [], "labels": labels}))
    result = cli(["env", "--clean-env", "--marathon-app", "app.json"], tmp_path)
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)
    listed = env["MARATHON_APP_LABELS"].split()
    assert "KEEP" in listed and "EDGE" in listed and "BIG" not in listed and len(listed) == 2002
    assert all(len(name) < 512 for name in env)


def test_dotdot_in_explicit_src_dest_is_an_ordinary_path(tmp_path: Path) -> None:
    """SRC:DEST comes from the operator (command line, ENTRYPOINT_TEMPLATES), like the command itself:
    ``..`` resolves normally there.  Confinement applies to what the templates choose: directory-mode
    destinations (symlinks out are refused above) and Jinja includes (``..`` refused above)."""
    write(tmp_path / "t" / "a.template", "a=${A}\n")
    (tmp_path / "work").mkdir()
    (tmp_path / "out").mkdir()
    work = tmp_path / "work"
    result = cli(["render", "--clean-env", "--set", "A=1", "../t/a.template:../out/a.conf"], work)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "a.conf").read_text() == "a=1\n"
    result = cli(["run", "--template", "../t/a.template:../out/b.conf", "--", "true"], work, {"A": "2"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "b.conf").read_text() == "a=2\n"
