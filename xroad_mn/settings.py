"""Application settings: a TOML file plus ``XROAD_MN_<APP>__`` environment overrides, unknown keys rejected.

Each application (registry, security server, trust services, adapters) declares one settings model that
derives from :class:`SettingsModel` and loads it once, at its entry point::

    >>> from pydantic import Field
    >>> class TrustSettings(SettingsModel):
    ...     host: str = "127.0.0.1"
    ...     port: int = Field(default=8899, ge=0, le=65535)
    >>> load_settings(TrustSettings, app="trust", env={"XROAD_MN_TRUST__PORT": "9000"}).port
    9000

Environment variables are named ``XROAD_MN_<APP>__<KEY>``; nested sections use ``__`` again
(``XROAD_MN_REGISTRY__DATABASE__URL``). Keys are case-insensitive in the environment. A key that the
model does not know — in the file or in the environment — is an error that names it.

An application's ``init`` writes the file that :func:`load_settings` reads with :func:`render_settings`::

    >>> print(render_settings({"port": 9000, "token": {"type": "software"}}, app="trust"), end="")
    # xroad-mn trust settings; environment overrides: XROAD_MN_TRUST__<KEY> (sections: __<KEY>__<KEY>)
    port = 9000
    <BLANKLINE>
    [token]
    type = "software"

Settings are configuration only. Trust material (CAs, TSAs, members) never comes from settings: it comes
from the configuration anchor and the verified global configuration.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = ["ENV_PREFIX", "SettingsModel", "load_settings", "render_settings"]

ENV_PREFIX: Final = "XROAD_MN_"
NESTED_SEPARATOR: Final = "__"
MAX_SETTINGS_FILE_BYTES: Final = 1024 * 1024


class SettingsModel(BaseModel):
    """Base of every application's settings: immutable, and unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


S = TypeVar("S", bound=SettingsModel)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"cannot read settings file {path}: {e.strerror}") from e
    if len(data) > MAX_SETTINGS_FILE_BYTES:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"settings file {path} is larger than 1 MiB")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"settings file {path} is not valid TOML: {e}") from e


def _env_overrides(app: str, env: Mapping[str, str]) -> dict[str, Any]:
    prefix = f"{ENV_PREFIX}{app.upper()}{NESTED_SEPARATOR}"
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.upper().startswith(prefix):
            continue
        path = [p.lower() for p in name[len(prefix) :].split(NESTED_SEPARATOR)]
        if not all(path):
            raise XRoadError(FaultCode.INVALID_SETTINGS, f"environment variable {name} names no setting")
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise XRoadError(FaultCode.INVALID_SETTINGS, f"environment variable {name} conflicts")
            node = child
        node[path[-1]] = value
    return out


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def _describe(e: ValidationError, app: str) -> str:
    problems = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            env_name = f"{ENV_PREFIX}{app.upper()}{NESTED_SEPARATOR}" + NESTED_SEPARATOR.join(
                str(p).upper() for p in err["loc"]
            )
            problems.append(f"unknown setting '{key}' (file key or {env_name})")
        else:
            problems.append(f"setting '{key}': {err['msg']}")
    return "; ".join(problems)


def load_settings(
    model: type[S],
    *,
    app: str,
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> S:
    """Build ``model`` from the TOML file at ``path``, then the environment, then explicit ``overrides``.

    Later sources win. ``env`` defaults to ``os.environ``. Raises :class:`XRoadError`
    (``invalid_settings``) naming every unknown or invalid key.
    """
    data: dict[str, Any] = _read_toml(path) if path is not None else {}
    data = _merge(data, _env_overrides(app, os.environ if env is None else env))
    if overrides:
        data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise XRoadError(
            FaultCode.INVALID_SETTINGS,
            f"invalid {app} settings: {_describe(e, app)}",
            kind=ErrorKind.BAD_INPUT,
        ) from e


def _toml_value(value: object, app: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple | frozenset | set):
        return "[" + ", ".join(_toml_value(v, app) for v in value) + "]"
    raise XRoadError(FaultCode.INVALID_SETTINGS, f"cannot write {type(value).__name__} to the {app} settings")


def render_settings(settings: Mapping[str, object], *, app: str) -> str:
    """The TOML text of ``settings`` for :func:`load_settings` (``app`` as there): a comment naming the
    environment overrides, the plain keys in order, then each mapping as a ``[section]``; ``None`` values
    are left out. A value TOML cannot hold here is ``invalid_settings``."""
    prefix = f"{ENV_PREFIX}{app.upper()}{NESTED_SEPARATOR}"
    lines = [
        f"# xroad-mn {app} settings; environment overrides: {prefix}<KEY> "
        f"(sections: {NESTED_SEPARATOR}<KEY>{NESTED_SEPARATOR}<KEY>)"
    ]
    tables: list[str] = []
    for key, value in sorted(settings.items()):
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append(f"\n[{key}]")
            tables += [f"{k} = {_toml_value(v, app)}" for k, v in sorted(value.items()) if v is not None]
        else:
            lines.append(f"{key} = {_toml_value(value, app)}")
    return "\n".join(lines + tables) + "\n"
