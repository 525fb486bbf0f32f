"""`run` options of issue 15 (stop delay, finish hooks, log files, state file): defaults, environment."""

from __future__ import annotations

import pytest

from entrypoint.errors import UsageError
from entrypoint.options import parse_run_args
from entrypoint.supervise.parts import killwindow


def test_defaults() -> None:
    opts = parse_run_args(["app"], {})
    assert opts.stop_delay == 0
    assert opts.finish_dir == "/etc/entrypoint.finish.d" and opts.finish_timeout == 5
    assert opts.log_files == [] and opts.state_file == "/run/entrypoint/state.json"


def test_environment_and_command_line() -> None:
    env = {"ENTRYPOINT_STOP_DELAY": "2.5", "ENTRYPOINT_FINISH_DIR": "/f", "ENTRYPOINT_FINISH_TIMEOUT": "1",
           "ENTRYPOINT_LOG_FILE": "/var/log/a b.log, /var/log/c.log", "ENTRYPOINT_STATE_FILE": ""}
    opts = parse_run_args(["app"], env)
    assert (opts.stop_delay, opts.finish_dir, opts.finish_timeout) == (2.5, "/f", 1)
    assert opts.log_files == ["/var/log/a b.log", "/var/log/c.log"] and opts.state_file == ""
    opts = parse_run_args(["--stop-delay=0", "--log-file", "/x.log", "--log-file", "/y.log", "app"], env)
    assert opts.stop_delay == 0 and opts.log_files == ["/x.log", "/y.log"]


@pytest.mark.parametrize("value", ["-1", "-0.5", "nan", "inf", "soon"])
def test_bad_stop_delay_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match="--stop-delay"):
        parse_run_args(["--stop-delay", value, "app"], {})
    with pytest.raises(UsageError, match="ENTRYPOINT_STOP_DELAY"):
        parse_run_args(["app"], {"ENTRYPOINT_STOP_DELAY": value})


@pytest.mark.parametrize(("text", "seconds"), [("5secs", 5.0), ("1.5mins", 90.0), ("500ms", 0.5),
                                               ("2hrs", 7200.0), ("10ns", 1e-8), ("0secs", 0.0)])
def test_mesos_durations(text: str, seconds: float) -> None:
    assert killwindow.parse_mesos_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "secs", "-1secs", "5 parsecs", ""])
def test_not_mesos_durations(text: str) -> None:
    assert killwindow.parse_mesos_duration(text) is None


def test_stop_budget_counts_finish_hooks() -> None:
    opts = parse_run_args(["--stop-delay", "3", "--grace-period", "5", "--finish-timeout", "2", "app"], {})
    assert killwindow.stop_budget(opts, 2) == 3 + 5 + 2 * 2
    assert killwindow.kill_window({"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "14secs"}) == (
        12.0, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=14secs minus 2 s")
    assert killwindow.warn_if_too_long(opts, {"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "14secs"}, 2)
    assert not killwindow.warn_if_too_long(opts, {"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "15secs"}, 2)
    assert not killwindow.warn_if_too_long(opts, {}, 2)
