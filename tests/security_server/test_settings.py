"""Node settings: X-Road's defaults, XROAD_MN_NODE__ overrides, refused keys, and configs/node.toml as the
commented example of every key."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from security_server.home import load_node_settings, settings_file
from security_server.settings import (
    DEFAULT_ADMIN_PORT,
    DEFAULT_CLIENT_HTTP_PORT,
    DEFAULT_CLIENT_HTTPS_PORT,
    DEFAULT_GLOBALCONF_UPDATE_INTERVAL_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_OCSP_FETCH_INTERVAL_SECONDS,
    DEFAULT_OCSP_RESPONDER_PORT,
    DEFAULT_RATE_PER_MINUTE,
    DEFAULT_RATE_PER_SECOND,
    DEFAULT_SERVER_PROXY_PORT,
    NodeSettings,
    TokenSettings,
    TokenType,
)
from tests.conftest import REPO_ROOT
from xroad_mn.errors import XRoadError

EXAMPLE = REPO_ROOT / "configs" / "node.toml"
HOME = Path("/var/lib/xroad-mn/node")


def _load(env: dict[str, str] | None = None, **overrides: Any) -> NodeSettings:
    return load_node_settings(HOME, env=env or {}, overrides=overrides, read_file=False)


def _refused(match: str, env: dict[str, str] | None = None, **overrides: Any) -> None:
    with pytest.raises(XRoadError, match=match) as exc:
        _load(env, **overrides)
    assert exc.value.has_code("invalid_settings")


def test_defaults_are_xroads() -> None:
    s = _load()
    assert (s.address, s.admin_port, s.client_http_port, s.client_https_port) == (
        "127.0.0.1",
        4000,
        8080,
        8443,
    )
    assert (s.server_proxy_port, s.ocsp_responder_port) == (5500, 5577)
    assert (s.ocsp_fetch_interval_seconds, s.globalconf_update_interval_seconds) == (1200, 60)
    assert s.allowed_federations == "none"
    assert s.token == TokenSettings(type=TokenType.SOFTWARE, directory=None, module=None, label=None)
    assert (s.rate_limit_per_second, s.rate_limit_per_minute, s.max_body_bytes) == (20, 600, 50 * 1024)
    assert s.database() == f"sqlite+aiosqlite:///{HOME}/node.db"
    assert s.engine_options() == {}
    assert s.ports() == {
        "admin_port": DEFAULT_ADMIN_PORT,
        "client_http_port": DEFAULT_CLIENT_HTTP_PORT,
        "client_https_port": DEFAULT_CLIENT_HTTPS_PORT,
        "server_proxy_port": DEFAULT_SERVER_PROXY_PORT,
        "ocsp_responder_port": DEFAULT_OCSP_RESPONDER_PORT,
    }
    assert (DEFAULT_OCSP_FETCH_INTERVAL_SECONDS, DEFAULT_GLOBALCONF_UPDATE_INTERVAL_SECONDS) == (1200, 60)
    assert (DEFAULT_RATE_PER_SECOND, DEFAULT_RATE_PER_MINUTE, DEFAULT_MAX_BODY_BYTES) == (20, 600, 51200)


def test_environment_overrides_every_kind_of_key() -> None:
    s = _load(
        {
            "XROAD_MN_NODE__ADDRESS": "127.0.0.3",
            "XROAD_MN_NODE__SERVER_PROXY_PORT": "15500",
            "XROAD_MN_NODE__DATABASE_URL": "postgresql+asyncpg://xroad@db/xroad",
            "XROAD_MN_NODE__DATABASE_SCHEMA": "node_ss1",
            "XROAD_MN_NODE__TOKEN__TYPE": "pkcs11",
            "XROAD_MN_NODE__TOKEN__MODULE": "/usr/lib/softhsm/libsofthsm2.so",
            "XROAD_MN_NODE__TOKEN__LABEL": "xroad-ss1",
        }
    )
    assert (s.address, s.server_proxy_port) == ("127.0.0.3", 15500)
    assert s.database() == "postgresql+asyncpg://xroad@db/xroad"
    assert s.engine_options() == {"connect_args": {"server_settings": {"search_path": "node_ss1"}}}
    assert s.token == TokenSettings(
        type=TokenType.PKCS11, module=Path("/usr/lib/softhsm/libsofthsm2.so"), label="xroad-ss1"
    )


def test_unknown_keys_and_a_pin_are_refused() -> None:
    _refused("unknown setting 'listen_port'", listen_port=1)
    _refused("XROAD_MN_NODE__TOKEN__PIN", {"XROAD_MN_NODE__TOKEN__PIN": "1234"})
    _refused("unknown setting 'token.pin'", token={"type": "software", "pin": "1234"})
    _refused("unknown setting 'pin'", pin="1234")


def test_token_fields_fit_the_token_type() -> None:
    _refused("pkcs11 token needs `module` and `label`", token={"type": "pkcs11"})
    _refused("are for pkcs11 tokens only", token={"module": "/usr/lib/x.so"})
    _refused("are for pkcs11 tokens only", token={"label": "x"})
    _refused("token.type", token={"type": "hsm"})
    _refused("token.label", token={"type": "pkcs11", "module": "/x.so", "label": "x" * 33})


def test_every_listener_needs_its_own_port() -> None:
    _refused("server_proxy_port and admin_port are both 4000", server_proxy_port=4000)
    _refused("admin_port", admin_port=70000)
    assert _load(admin_port=0, client_http_port=0).ports()["admin_port"] == 0  # 0: the system chooses


@pytest.mark.parametrize("address", ["", "127.0.0.1 ", "http://127.0.0.1", "a/b", "x" * 300])
def test_address_is_a_host(address: str) -> None:
    _refused("address", address=address)


@pytest.mark.parametrize(
    ("value", "allowed", "refused"),
    [
        ("none", [], ["EE", "MN"]),
        ("all", ["EE", "FI"], []),
        ("ALL", ["EE"], []),
        ("EE, FI", ["EE", "FI"], ["LV", "ee"]),
        ("EE,none", [], ["EE"]),
        ("all,NONE", [], ["EE"]),
    ],
)
def test_allowed_federations(value: str, allowed: list[str], refused: list[str]) -> None:
    s = _load(allowed_federations=value)
    assert all(s.allows_federation(i) for i in allowed)
    assert not any(s.allows_federation(i) for i in refused)


def test_allowed_federations_must_name_instances() -> None:
    _refused("allowed_federations", allowed_federations="EE;FI")
    _refused("allowed_federations", allowed_federations="")


def test_strict_identifier_checks_are_on_unless_turned_off() -> None:
    assert _load().strict_identifier_checks is True
    assert _load({"XROAD_MN_NODE__STRICT_IDENTIFIER_CHECKS": "false"}).strict_identifier_checks is False
    assert _load(strict_identifier_checks=False).strict_identifier_checks is False
    _refused("strict_identifier_checks", {"XROAD_MN_NODE__STRICT_IDENTIFIER_CHECKS": "maybe"})


def test_subsystems_and_members_named_here_follow_strict_identifier_checks() -> None:
    xyp, member = "MN/GOV/9010001/xyp_gateway", "MN/GOV/90_10001"
    names: dict[str, Any] = {
        "disabled_body_logging_remote_producer_subsystems": [xyp],
        "archive_encryption_keys": {member: ["k"]},
    }
    lax = _load({"XROAD_MN_NODE__STRICT_IDENTIFIER_CHECKS": "false"}, **names)
    assert lax.disabled_body_logging_remote_producer_subsystems == [xyp]
    assert lax.archive_encryption_keys == {member: ["k"]}
    for key, value in names.items():
        with pytest.raises(XRoadError, match="in strict mode") as exc:
            _load(**{key: value})
        assert f"setting '{key}'" in exc.value.message
        assert "(node setting strict_identifier_checks = true)" in exc.value.message
    # What no mode allows stays refused.
    _refused("enabled_body_logging_local_producer_subsystems", strict_identifier_checks=False,
             enabled_body_logging_local_producer_subsystems=["MN/GOV/9010001/a%3Ab"])  # fmt: skip


def test_numbers_are_bounded() -> None:
    for key in ("ocsp_fetch_interval_seconds", "globalconf_update_interval_seconds", "rate_limit_per_second"):
        with pytest.raises(XRoadError, match=key):
            load_node_settings(HOME, env={}, overrides={key: 0}, read_file=False)
    _refused("max_body_bytes", max_body_bytes=64 * 1024 * 1024)
    _refused("database_schema", database_schema="node; DROP TABLE clients")


# -- configs/node.toml ----------------------------------------------------------------------------------


def _home_with(tmp_path: Path, text: str) -> Path:
    settings_file(tmp_path).write_text(text, encoding="utf-8")
    return tmp_path


def test_example_file_loads_and_its_values_are_the_defaults(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, settings_file(tmp_path))
    assert load_node_settings(tmp_path, env={}) == NodeSettings(home=tmp_path)


def test_example_file_documents_every_key_with_its_environment_variable() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    sections: dict[str, type[NodeSettings] | type[TokenSettings]] = {"": NodeSettings, "token": TokenSettings}
    for section, model in sections.items():
        for name in model.model_fields:
            if name == "home" or name == "token":
                continue
            assert re.search(rf"^(# )?{name} = ", text, re.MULTILINE), f"{name} has no example line"
            env = "XROAD_MN_NODE__" + (f"{section.upper()}__" if section else "") + name.upper()
            assert env in text, f"{env} is not documented"
    assert "home is not a key" in text
    assert "[token]" in text


def test_the_commented_examples_are_valid_too(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    uncommented = re.sub(r"^# (\w+ = .*)$", r"\1", text, flags=re.MULTILINE)
    uncommented = uncommented.replace('type = "software"', 'type = "pkcs11"')
    s = load_node_settings(_home_with(tmp_path, uncommented), env={})
    assert s.database_url == "postgresql+asyncpg://xroad@db.example.mn/xroad"
    assert s.database_schema == "node_ss1"
    assert s.token.type is TokenType.PKCS11
    assert s.token.label == "xroad-ss1"
