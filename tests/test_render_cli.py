"""`entrypoint render` as a real subprocess: outputs, all-or-nothing, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "entrypoint", "render", *args], cwd=cwd, env=base,
                          capture_output=True, timeout=60, check=False)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def assert_clean_failure(result: subprocess.CompletedProcess[bytes]) -> str:
    err = result.stderr.decode()
    assert result.returncode == 78, err
    assert "Traceback" not in err
    return err


def test_render_to_stdout(tmp_path: Path) -> None:
    text = "port = ${PORT}\nbind_address = ${BIND_ADDRESS:-0.0.0.0}\n"
    write(tmp_path / "server.properties.template", text)
    result = run(["--set", "PORT=31000", "server.properties.template"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"port = 31000\nbind_address = 0.0.0.0\n"


def test_render_to_dest_and_unchanged_second_run(tmp_path: Path) -> None:
    write(tmp_path / "a.j2", "port={{ env.PORT | int }}\n")
    dest = tmp_path / "a.conf"
    assert run(["--set", "PORT=80", "a.j2:a.conf"], tmp_path).returncode == 0
    assert dest.read_text() == "port=80\n"
    os.utime(dest, (1000, 1000))
    assert run(["--set", "PORT=80", "a.j2:a.conf"], tmp_path).returncode == 0
    assert dest.stat().st_mtime == 1000


def test_all_or_nothing_across_two_templates(tmp_path: Path) -> None:
    write(tmp_path / "one.template", "one ${PORT}\n")
    write(tmp_path / "two.template", "two\n  ${MISSING}\n")
    write(tmp_path / "one.conf", "old one\n")
    result = run(["--strict", "--set", "PORT=1", "one.template:one.conf", "two.template:two.conf"], tmp_path)
    err = assert_clean_failure(result)
    assert "two.template:2:3:" in err and "MISSING" in err
    assert (tmp_path / "one.conf").read_text() == "old one\n"
    assert not (tmp_path / "two.conf").exists()
    assert not list(tmp_path.glob(".entrypoint-*"))


@pytest.mark.parametrize("syntax", ["envsubst", "shell", "jinja"])
def test_values_appear_literally(tmp_path: Path, syntax: str) -> None:
    text = "v={{ env.V }}\n" if syntax == "jinja" else "v=${V}\n"
    write(tmp_path / "t", text)
    value = "${OTHER} $(id) {{ 7*7 }} `id` $$"
    result = run(["--syntax", syntax, "--set", f"V={value}", "--set", "OTHER=leak", "t"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"v={value}\n".encode()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("unterminated.template", "a ${X:-oops\n", "unterminated.template:1:"),
        ("syntax.j2", "ok\n{% if %}\n", "syntax.j2:2:"),
        ("required.template", "x\n${NEED:?set NEED}\n", "required.template:2:1:"),
        ("undefined.j2", "{{ env.NOPE }}\n", "undefined.j2:1:8:"),
        ("binary.template", b"ab\x00cd", "binary.template:1:3:"),
        ("latin1.template", b"caf\xe9\n", "latin1.template:1:4:"),
    ],
)
def test_bad_templates_give_one_line_errors(tmp_path: Path, name: str, content: str | bytes,
                                             expected: str) -> None:
    write(tmp_path / name, content)
    write(tmp_path / "out.conf", "untouched\n")
    err = assert_clean_failure(run(["--clean-env", f"{name}:out.conf"], tmp_path))
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], err
    assert (tmp_path / "out.conf").read_text() == "untouched\n"


def test_missing_template_and_missing_dest_dir(tmp_path: Path) -> None:
    assert "not found" in assert_clean_failure(run(["nope.template"], tmp_path))
    write(tmp_path / "a.template", "x\n")
    assert "does not exist" in assert_clean_failure(run(["a.template:no/such/dir/a.conf"], tmp_path))


def test_strict_applies_to_envsubst_syntax(tmp_path: Path) -> None:
    write(tmp_path / "t", "a\nb $X ${Y}\n")
    err = assert_clean_failure(run(["--clean-env", "--strict", "--syntax", "envsubst", "--set", "Y=1", "t"],
                                   tmp_path))
    assert "t:2:3: undefined variable X" in err


def test_envsubst_syntax_is_byte_transparent(tmp_path: Path) -> None:
    write(tmp_path / "bin", b"\xff\x00$A\xfe\n")
    result = run(["--clean-env", "--syntax", "envsubst", "--set", "A=x", "bin"], tmp_path)
    assert result.returncode == 0 and result.stdout == b"\xff\x00x\xfe\n"


def test_selection_keeps_nginx_variables(tmp_path: Path) -> None:
    conf = "listen ${NGINX_PORT};\nproxy_set_header Host $host;\nset $p $http_proxy;\n"
    write(tmp_path / "default.conf.template", conf)
    env = ["--set", "NGINX_PORT=8080", "--set", "host=BAD", "--set", "http_proxy=BAD"]
    expected = b"listen 8080;\nproxy_set_header Host $host;\nset $p $http_proxy;\n"
    for flags in (["--braced-only"], ["--prefix", "NGINX_"], ["--only", "NGINX_PORT"]):
        result = run([*env, *flags, "default.conf.template"], tmp_path)
        assert result.stdout == expected, (flags, result.stderr)


def test_directory_mode_from_settings(tmp_path: Path) -> None:
    write(tmp_path / "templates" / "etc" / "app" / "app.conf.template", "port=${PORT}\n")
    write(tmp_path / "templates" / "site.yaml.j2", "name: {{ env.NAME | yaml_quote }}\n")
    (tmp_path / "root").mkdir()
    env = {"ENTRYPOINT_TEMPLATES_DIR": str(tmp_path / "templates"),
           "ENTRYPOINT_OUTPUT_DIR": str(tmp_path / "root"), "PORT": "31000", "NAME": "a: b"}
    result = run(["-v"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "root" / "etc" / "app" / "app.conf").read_text() == "port=31000\n"
    assert (tmp_path / "root" / "site.yaml").read_text() == 'name: "a: b"\n'


def test_missing_templates_dir_is_nothing_to_do(tmp_path: Path) -> None:
    result = run([], tmp_path, {"ENTRYPOINT_TEMPLATES_DIR": str(tmp_path / "none")})
    assert result.returncode == 0 and result.stdout == b""


def test_bad_setting_is_a_config_error(tmp_path: Path) -> None:
    err = assert_clean_failure(run([], tmp_path, {"ENTRYPOINT_SYNTAX": "perl"}))
    assert "ENTRYPOINT_SYNTAX" in err


def test_variables_listing(tmp_path: Path) -> None:
    write(tmp_path / "a.template", "port=${PORT}\nbind=${BIND:-0.0.0.0}\n")
    write(tmp_path / "b.j2", "{{ getenv('USER_NAME', 'app') }}\n")
    result = run(["--variables", "a.template", "b.j2"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "a.template:1:6: PORT"
    assert lines[1].startswith("a.template:2:6: BIND") and "0.0.0.0" in lines[1]
    assert lines[2].startswith("b.j2:1:") and "USER_NAME" in lines[2] and "app" in lines[2]


def test_secrets_are_not_printed_on_errors(tmp_path: Path) -> None:
    write(tmp_path / "a.j2", "{{ env.PW | int }}\n")
    err = assert_clean_failure(run(["--set", "PW=hunter2", "a.j2"], tmp_path))
    assert "hunter2" not in err and "a.j2:1:" in err


#: DEST spellings that name the directory entry of something the render reads (relative to tmp_path,
#: where a.tmpl and b.tmpl are templates, vars.env an env file and `via` a symlink to tmp_path itself):
#: (templates, options, message)
ITSELF = "destination is the template a.tmpl itself"
REPLACING = {
    "its own path": (["a.tmpl:a.tmpl"], [], ITSELF),
    "its own path, spelled otherwise": (["a.tmpl:./sub/../a.tmpl"], [], ITSELF),
    "through a symlinked directory": (["a.tmpl:via/a.tmpl"], [], ITSELF),
    "another template of the set": (["a.tmpl:b.tmpl", "b.tmpl:b.conf"], [],
                                    "destination is the template b.tmpl, which rendering a.tmpl would"),
    "the env file": (["a.tmpl:vars.env"], ["--env-file", "vars.env"],
                     "destination is the env file vars.env, which rendering a.tmpl would"),
}


@pytest.mark.parametrize("case", list(REPLACING))
@pytest.mark.parametrize("command", ["render", "run"])
def test_a_destination_that_would_replace_an_input_is_refused(
        tmp_path: Path, case: str, command: str) -> None:
    """Rendering over an input loses it (and under --watch re-renders forever): exit 78, nothing written."""
    templates, options, message = REPLACING[case]
    inputs = {"a.tmpl": "a=${A}\n", "b.tmpl": "b=${A}\n", "vars.env": "B=2\n"}
    for name, text in inputs.items():
        write(tmp_path / name, text)
    (tmp_path / "sub").mkdir()
    (tmp_path / "via").symlink_to(tmp_path)
    marker = tmp_path / "started"
    if command == "render":
        result = run([*options, *templates], tmp_path, {"A": "1"})
    else:
        argv = [*options, *(a for arg in templates for a in ("--template", arg))]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "A": "1", "ENTRYPOINT_STATE_FILE": ""}
        command_line = [sys.executable, "-m", "entrypoint", "run", *argv, "--", "touch", str(marker)]
        result = subprocess.run(command_line, cwd=tmp_path, env=env, capture_output=True, timeout=60)
    err = assert_clean_failure(result)
    assert message in err and "give it another DEST" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert {name: (tmp_path / name).read_text() for name in inputs} == inputs
    assert not marker.exists() and not (tmp_path / "b.conf").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*inputs, "sub", "via"])  # no temp files


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_a_destination_linked_to_the_template_replaces_only_the_link(tmp_path: Path, link: str) -> None:
    """The atomic rename replaces the DEST entry, never the file behind it: the template survives."""
    template = write(tmp_path / "a.tmpl", "a=${A}\n")
    dest = tmp_path / "a.conf"
    if link == "symlink":
        dest.symlink_to(template)
    else:
        os.link(template, dest)
    result = run(["a.tmpl:a.conf"], tmp_path, {"A": "1"})
    assert result.returncode == 0, result.stderr
    assert template.read_text() == "a=${A}\n"
    assert dest.read_text() == "a=1\n" and not dest.is_symlink()
