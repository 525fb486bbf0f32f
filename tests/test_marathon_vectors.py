"""Every golden case in marathon-env-vectors.jsonl must come out exact."""

from __future__ import annotations

import json
from typing import Any

import pytest

from entrypoint.context.marathon import mesos_docker_env, parse_app, synthesize
from tests.reference import DATA

VECTORS = DATA / "marathon-env-vectors.jsonl"


def load_vectors() -> list[dict[str, Any]]:
    return [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]


def ports_input(case: dict[str, Any]) -> list[int | None]:
    """`--ports` semantics: a generated container port replaces the '-' of its mapping."""
    ports: list[int | None] = list(case["assigned_host_ports"])
    for index, value in case.get("generated_container_ports", {}).items():
        ports[int(index)] = value
    return ports


def normalise(env: dict[str, str], as_set: list[str]) -> dict[str, object]:
    return {k: (frozenset(v.split()) if k in as_set else v) for k, v in env.items()}


def run_case(case: dict[str, Any], *, mesos_env: bool = False) -> dict[str, str]:
    return synthesize(
        parse_app(case["app"]),
        host=case["host"],
        task_id=case["task_id"],
        ports=ports_input(case),
        version=case["marathon_version"],
        enforce_role=case["enforce_role"],
        env_vars_prefix=case.get("env_vars_prefix"),
        mesos_env=mesos_env,
    )


CASES = load_vectors()


def test_all_vectors_present() -> None:
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case: dict[str, Any]) -> None:
    as_set = ["MARATHON_APP_LABELS", *case.get("compare_as_set", [])]
    got = run_case(case)
    assert normalise(got, as_set) == normalise(case["expected_env"], as_set)


@pytest.mark.parametrize("case", [c for c in CASES if "mesos_added_env" in c], ids=lambda c: c["name"])
def test_mesos_layer_opt_in(case: dict[str, Any]) -> None:
    got = run_case(case, mesos_env=True)
    added = {k: v for k, v in got.items() if k not in case["expected_env"]}
    assert set(added) == set(case["mesos_added_env"])
    assert added["MESOS_SANDBOX"] == case["mesos_added_env"]["MESOS_SANDBOX"]
    assert added["MESOS_CONTAINER_NAME"] == mesos_docker_env(case["task_id"])["MESOS_CONTAINER_NAME"]
