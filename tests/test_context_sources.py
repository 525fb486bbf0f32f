"""Source merging order, dotenv parsing, --ports parsing, NAME_FILE secrets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from entrypoint.commands.context_args import add_context_arguments, context_options, parse_ports
from entrypoint.context.choices import ContextOptions, MarathonOptions
from entrypoint.context.sources import (
    build_environment,
    parse_dotenv,
    resolve_file_variables,
)
from entrypoint.errors import ContextError, UsageError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_order_env_file_marathon_set(tmp_path: Path) -> None:
    app = write(
        tmp_path / "app.json", json.dumps({"id": "/a", "portDefinitions": [], "env": {"FROM_APP": "app"}})
    )
    envfile = write(tmp_path / "a.env", "HOST=from-file\nFROM_APP=file\nONLY_IN_ENVFILE=1\n")
    opts = ContextOptions(
        clean_env=True,
        env_files=[envfile],
        sets=["MARATHON_APP_ID=from-set"],
        marathon=MarathonOptions(app_path=app, host="agent", task_id="T"),
    )
    env = build_environment(opts)
    assert env["HOST"] == "agent"  # Marathon beats env files
    assert env["FROM_APP"] == "app"  # the app's env beats generated and file values
    assert env["MARATHON_APP_ID"] == "from-set"  # --set beats everything
    assert env["ONLY_IN_ENVFILE"] == "1" and env["MESOS_TASK_ID"] == "T"


def test_clean_env_false_keeps_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRYPOINT_TEST_MARKER", "here")
    assert build_environment(ContextOptions(resolve_files=False))["ENTRYPOINT_TEST_MARKER"] == "here"
    assert "ENTRYPOINT_TEST_MARKER" not in build_environment(ContextOptions(clean_env=True))


def test_dotenv_quotes_and_comments(tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.env",
        "# comment\n"
        "export A=plain # trailing\n"
        "B='single $X \\n kept'\n"
        'C="two\\nlines \\"q\\" back\\\\slash"\n'
        'D="\\\\n is a backslash then n"\n'
        "E=\n"
        "F='it's'\n",
    )
    assert parse_dotenv(path) == {
        "A": "plain",
        "B": "single $X \\n kept",
        "C": 'two\nlines "q" back\\slash',
        "D": "\\n is a backslash then n",
        "E": "",
        "F": "it's",
    }


@pytest.mark.parametrize("text", ["NOEQUALS\n", "1BAD=x\n", "A='unterminated\n"])
def test_dotenv_errors_name_the_line(tmp_path: Path, text: str) -> None:
    with pytest.raises(ContextError, match="line 1"):
        parse_dotenv(write(tmp_path / "bad.env", text))


def test_file_convention(tmp_path: Path) -> None:
    secret = write(tmp_path / "pw", "s3cret\n")
    env = resolve_file_variables({"DB_PASSWORD_FILE": str(secret), "X_FILE": str(secret), "X": "explicit"})
    assert env["DB_PASSWORD"] == "s3cret" and env["X"] == "explicit"
    with pytest.raises(ContextError) as info:
        resolve_file_variables({"Y_FILE": str(tmp_path / "missing")})
    assert info.value.variable == "Y_FILE"


def test_parse_ports() -> None:
    assert parse_ports("31000,-, 31002") == [31000, None, 31002]
    with pytest.raises(UsageError):
        parse_ports("abc")
    with pytest.raises(ContextError, match="out of range"):
        parse_ports("70000")
    with pytest.raises(ContextError, match="out of range"):
        parse_ports("0")


def test_context_options_from_arguments(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_context_arguments(parser)
    ns = parser.parse_args(
        ["--marathon-app", "app.json", "--ports=-,31000", "--marathon-version", "1.4",
         "--enforce-role", "true", "--env-vars-prefix", "P_", "--mesos-env", "--host", "h", "--task-id", "T"]
    )  # fmt: skip
    opts = context_options(ns)
    assert opts.marathon == MarathonOptions(
        app_path="app.json", host="h", task_id="T", ports=[None, 31000], version="1.4",
        enforce_role=True, env_vars_prefix="P_", mesos_env=True,
    )  # fmt: skip


def test_file_convention_is_lazy_so_unrelated_file_variables_do_not_break(tmp_path: Path) -> None:
    """Inherited `*_FILE` variables that are not secrets must not fail a render."""
    secret = tmp_path / "db-password"
    secret.write_text("s3cret\n")
    env = build_environment(
        ContextOptions(clean_env=True, sets=[f"DB_PASSWORD_FILE={secret}", "TF_CLI_CONFIG_FILE=/nonexistent"])
    )
    assert "TF_CLI_CONFIG" not in sorted(env)  # never read: nobody asked for it
    assert "DB_PASSWORD" in env
    assert env["DB_PASSWORD"] == "s3cret"
    assert env.get("DB_PASSWORD") == "s3cret"
    with pytest.raises(ContextError) as info:
        env["TF_CLI_CONFIG"]
    assert "TF_CLI_CONFIG_FILE" in str(info.value)


def test_explicit_value_wins_over_file_and_iteration_hides_unread_secrets(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-file")
    env = build_environment(ContextOptions(clean_env=True, sets=[f"TOKEN_FILE={secret}", "TOKEN=explicit"]))
    assert env["TOKEN"] == "explicit"
    env2 = build_environment(ContextOptions(clean_env=True, sets=[f"TOKEN_FILE={secret}"]))
    assert sorted(env2) == ["TOKEN_FILE"]
