"""Render options from ``ENTRYPOINT_*`` environment variables.

Images bake their configuration into the environment (``ENV
ENTRYPOINT_TEMPLATES_DIR=...``) so the same ``ENTRYPOINT`` line works
everywhere; command-line flags override these.  The default output directory
is ``/`` so the templates directory mirrors the filesystem:
``templates/etc/app/app.conf.template`` becomes ``/etc/app/app.conf``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from entrypoint.errors import ConfigError
from entrypoint.render.model import Selection

ENV_PREFIX = "ENTRYPOINT_"


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class EntrypointSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    templates_dir: Path = Path("/etc/entrypoint/templates")
    output_dir: Path = Path("/")
    syntax: Literal["auto", "envsubst", "shell", "jinja"] = "auto"
    strict: bool | None = None  # None: the syntax's default (Jinja strict, shell/envsubst not)
    only: Annotated[list[str], NoDecode] = []
    prefix: Annotated[list[str], NoDecode] = []
    braced_only: bool = False
    templates: Annotated[list[str], NoDecode] = []
    env_file: Annotated[list[str], NoDecode] = []  # dotenv files feeding the templates

    @field_validator("only", "prefix", "templates", "env_file", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        return _comma_list(value)

    def selection(self) -> Selection:
        return Selection(
            names=frozenset(self.only) if self.only else None,
            prefixes=tuple(self.prefix),
            braced_only=self.braced_only,
        )


def load_settings(environ: Mapping[str, str] | None = None) -> EntrypointSettings:
    """Read the settings; a bad value becomes a ConfigError naming the variable."""
    try:
        if environ is None:
            return EntrypointSettings()
        values = {key[len(ENV_PREFIX):].lower(): value for key, value in environ.items()
                  if key.startswith(ENV_PREFIX)}
        return EntrypointSettings.model_validate(
            {k: v for k, v in values.items() if k in EntrypointSettings.model_fields}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise ConfigError(f"{ENV_PREFIX}{field.upper()}: {first['msg']}") from None
