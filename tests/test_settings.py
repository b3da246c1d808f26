"""Settings: TOML plus XROAD_MN_<APP>__ environment overrides; unknown keys are rejected by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from xroad_mn.errors import XRoadError
from xroad_mn.settings import SettingsModel, load_settings, render_settings


class DatabaseSettings(SettingsModel):
    url: str = "sqlite+aiosqlite:///registry.db"
    pool_size: int = Field(default=5, ge=1)


class ExampleSettings(SettingsModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8899, ge=0, le=65535)
    database: DatabaseSettings = DatabaseSettings()


def test_defaults_file_then_environment(tmp_path: Path) -> None:
    f = tmp_path / "example.toml"
    f.write_text('port = 9000\n[database]\nurl = "postgresql+asyncpg://db/x"\n')
    s = load_settings(
        ExampleSettings, app="example", path=f, env={"XROAD_MN_EXAMPLE__DATABASE__POOL_SIZE": "7"}
    )
    assert (s.host, s.port, s.database.url, s.database.pool_size) == (
        "127.0.0.1",
        9000,
        "postgresql+asyncpg://db/x",
        7,
    )
    s2 = load_settings(ExampleSettings, app="example", path=f, env={"xroad_mn_example__port": "9100"})
    assert s2.port == 9100


def test_other_apps_environment_is_ignored() -> None:
    s = load_settings(ExampleSettings, app="example", env={"XROAD_MN_REGISTRY__SURPRISE": "1"})
    assert s.port == 8899


def test_unknown_file_key_is_named(tmp_path: Path) -> None:
    f = tmp_path / "example.toml"
    f.write_text("prot = 9000\n")
    with pytest.raises(XRoadError) as e:
        load_settings(ExampleSettings, app="example", path=f, env={})
    assert e.value.code == "invalid_settings"
    assert "'prot'" in e.value.message


def test_unknown_environment_key_is_named() -> None:
    with pytest.raises(XRoadError) as e:
        load_settings(ExampleSettings, app="example", env={"XROAD_MN_EXAMPLE__DATABASE__URI": "x"})
    assert "database.uri" in e.value.message
    assert "XROAD_MN_EXAMPLE__DATABASE__URI" in e.value.message


def test_invalid_value_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(XRoadError, match="port"):
        load_settings(ExampleSettings, app="example", env={"XROAD_MN_EXAMPLE__PORT": "70000"})
    f = tmp_path / "bad.toml"
    f.write_text("port = = 1")
    with pytest.raises(XRoadError, match="not valid TOML"):
        load_settings(ExampleSettings, app="example", path=f, env={})
    with pytest.raises(XRoadError, match="cannot read"):
        load_settings(ExampleSettings, app="example", path=tmp_path / "missing.toml", env={})


def test_settings_are_immutable() -> None:
    s = load_settings(ExampleSettings, app="example", env={})
    with pytest.raises(ValueError, match="frozen"):
        s.port = 1  # type: ignore[misc]


def test_rendered_settings_load_back(tmp_path: Path) -> None:
    f = tmp_path / "example.toml"
    text = render_settings(
        {"host": 'a"b\\c', "port": 9000, "database": {"url": "postgresql+asyncpg://db/x", "pool_size": None}},
        app="example",
    )
    f.write_text(text)
    s = load_settings(ExampleSettings, app="example", path=f, env={})
    assert (s.host, s.port, s.database.url, s.database.pool_size) == (
        'a"b\\c',
        9000,
        "postgresql+asyncpg://db/x",
        5,
    )
    assert text.startswith("# xroad-mn example settings; environment overrides: XROAD_MN_EXAMPLE__<KEY>")
    with pytest.raises(XRoadError, match="cannot write object") as e:
        render_settings({"host": object()}, app="example")
    assert e.value.code == "invalid_settings"
