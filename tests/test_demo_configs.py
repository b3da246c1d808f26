"""configs/demo: the demo's registry, node and adapter configurations load with the apps' own settings models,
and say what the demo actually runs (addresses, services)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from adapters.demo.services import CONFIGS_DIR, PROVIDERS, SALARY_SERVICE
from adapters.ready.config import load_ready_adapter
from registry.home import load_registry_settings, settings_file
from security_server.demo import DEMO_NODES
from security_server.home import load_node_settings

DEMO_CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "demo"


@pytest.mark.parametrize("index", range(len(DEMO_NODES)))
def test_node_configs_load_and_match_the_demo_nodes(index: int, tmp_path: Path) -> None:
    node = DEMO_NODES[index]
    home = tmp_path / node.name
    home.mkdir()
    shutil.copy(DEMO_CONFIGS / "nodes" / f"{node.name}.toml", home / "node.toml")
    settings = load_node_settings(home, env={})
    assert settings.address == f"127.0.0.{2 + index}"
    assert settings.globalconf_update_interval_seconds == 2
    assert settings.globalconf_ca_file is not None
    text = (DEMO_CONFIGS / "nodes" / f"{node.name}.toml").read_text(encoding="utf-8")
    assert f"--server-code {node.server_code}" in text
    owner = node.owner
    assert f"--owner MEMBER:MN/{owner.member_class}/{owner.member_code}" in text


def test_registry_config_loads(tmp_path: Path) -> None:
    home = tmp_path / "registry"
    home.mkdir()
    shutil.copy(DEMO_CONFIGS / "registry.toml", settings_file(home))
    settings = load_registry_settings(home, env={})
    assert settings.public_tls
    assert (settings.admin_host, settings.admin_port, settings.public_port) == ("127.0.0.1", 4000, 8080)


def test_adapter_configs_load_and_document_their_services() -> None:
    assert CONFIGS_DIR == DEMO_CONFIGS / "adapters"
    loaded = {path.stem: load_ready_adapter(path, env={}) for path in sorted(CONFIGS_DIR.glob("*.toml"))}
    where = {name: (a.kind, a.host, a.port) for name, a in loaded.items()}
    assert where == {
        "civil-registry": ("sql", "127.0.0.2", 8091),
        "property-registry": ("sql", "127.0.0.2", 8094),
        "taxpayer": ("sql", "127.0.0.3", 8093),
        "vehicle-registry": ("http", "127.0.0.5", 8095),
        "social-insurance": ("soap", "127.0.0.6", 8096),
    }
    paths = {
        name: sorted(a.adapter().openapi()["paths"]) for name, a in loaded.items() if a.adapter is not None
    }
    assert paths == {
        "civil-registry": ["/citizens/{regnum}", "/citizens/{regnum}/address"],
        "property-registry": ["/owners/{regnum}/properties", "/properties/{property_number}"],
        "taxpayer": ["/taxpayers/{tin}/status"],
    }
    # The adapters' hosts are their agencies' (the providers' node addresses in the demo's order).
    assert [() if n.consumer else n.subsystems_in("MN") for n in DEMO_NODES] == list(PROVIDERS)
    for name in ("civil-registry", "property-registry", "taxpayer"):
        url = tomllib.loads((CONFIGS_DIR / f"{name}.toml").read_text(encoding="utf-8"))["database"]["url"]
        assert url.startswith("sqlite+aiosqlite:")
    insurance = tomllib.loads((CONFIGS_DIR / "social-insurance.toml").read_text(encoding="utf-8"))
    assert [op["service_code"] for op in insurance["operations"]] == [SALARY_SERVICE]
