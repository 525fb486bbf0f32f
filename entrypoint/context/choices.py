"""What the CONTEXT flags chose (``--clean-env``, ``--env-file``, ``--set``, ``--marathon-app`` ...).

Both :mod:`.sources` (the merge) and :mod:`.marathon` (the synthesis) read these, so they live
apart from both: neither module needs the other's code to name its input.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from typing import TypeAlias

    StrPath: TypeAlias = str | os.PathLike[str]


class MarathonOptions:
    """What `--marathon-app` and its companion flags say (see cli.md).

    Plain classes here, not dataclasses: :mod:`dataclasses` (with the
    :mod:`inspect` it imports) costs more start-up than a whole shell render.
    """

    def __init__(
        self,
        app_path: StrPath,
        host: str = "localhost",
        task_id: str | None = None,
        ports: list[int | None] | None = None,
        version: str = "1.10",
        enforce_role: bool | None = False,  # None: leave MARATHON_APP_ENFORCE_GROUP_ROLE out
        env_vars_prefix: str | None = None,
        mesos_env: bool = False,  # also add MESOS_SANDBOX / MESOS_CONTAINER_NAME (DOCKER containers)
    ) -> None:
        self.app_path = app_path
        self.host = host
        self.task_id = task_id
        self.ports = ports
        self.version = version
        self.enforce_role = enforce_role
        self.env_vars_prefix = env_vars_prefix
        self.mesos_env = mesos_env

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"MarathonOptions({vars(self)!r})"


class ContextOptions:
    def __init__(
        self,
        clean_env: bool = False,
        env_files: list[StrPath] | None = None,
        sets: list[str] | None = None,
        marathon: MarathonOptions | None = None,
        resolve_files: bool = True,
    ) -> None:
        self.clean_env = clean_env
        self.env_files: list[StrPath] = list(env_files or [])
        self.sets: list[str] = list(sets or [])
        self.marathon = marathon
        self.resolve_files = resolve_files

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(self) == vars(other)
