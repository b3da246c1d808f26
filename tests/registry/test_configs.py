"""``configs/registry.toml``, the example registry settings, loads through the real settings loader, gives
exactly the model's defaults, and names and explains every field of the model, so it cannot drift."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

from registry.home import load_registry_settings
from registry.settings import RegistrySettings
from xroad_mn.settings import ENV_PREFIX

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "registry.toml"


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(EXAMPLE, home / "registry.toml")
    return home


def test_example_loads_to_the_defaults(tmp_path: Path) -> None:
    home = _home(tmp_path)
    assert load_registry_settings(home, env={}) == RegistrySettings(home=home)


def test_example_names_every_setting_with_its_environment_variable() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = set(tomllib.loads(text))
    commented = set(re.findall(r"^# ([a-z_]+) = ", text, flags=re.MULTILINE))
    assert not keys & commented
    fields = set(RegistrySettings.model_fields)
    assert keys | commented == fields - {"home"}
    assert re.search(r"^# home: ", text, flags=re.MULTILINE)
    for name in fields - {"home"}:
        assert f"{ENV_PREFIX}REGISTRY__{name.upper()}" in text, name
        assert re.search(rf"^# .*\n(?:# .*\n)*#? ?{name} = ", text, flags=re.MULTILINE), (
            f"{name} is unexplained"
        )


def test_commented_examples_are_valid_values(tmp_path: Path) -> None:
    """Uncommenting every example gives a file that loads, with those values."""
    home = _home(tmp_path)
    text = EXAMPLE.read_text(encoding="utf-8")
    fields = "|".join(RegistrySettings.model_fields)
    uncommented = re.sub(rf"^# (({fields}) = .*)$", r"\1", text, flags=re.MULTILINE)
    (home / "registry.toml").write_text(uncommented, encoding="utf-8")
    plain = tomllib.loads(text)
    examples = {k: v for k, v in tomllib.loads(uncommented).items() if k not in plain}
    assert len(examples) == 9
    settings = load_registry_settings(home, env={})
    for name, value in examples.items():
        loaded = getattr(settings, name)
        assert (str(loaded) if isinstance(loaded, Path) else loaded) == value, name
