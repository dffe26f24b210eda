"""One source of truth for defaults: the schemas in learnai/config/schema.py. A YAML
option in conf/ sets only the values in which it differs from its schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from learnai.config import register_configs

CONF = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("data", "model", "optimizer", "trainer", "tracking")


def _options() -> list[Path]:
    return sorted(p for g in GROUPS for p in (CONF / g).glob("*.yaml"))


@pytest.mark.parametrize("path", _options(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_an_option_restates_no_schema_default(path: Path) -> None:
    register_configs()
    option = OmegaConf.load(path)
    (schema_name,) = [d.lstrip("/") for d in option.defaults if d != "_self_"]
    schema = ConfigStore.instance().load(f"{schema_name}.yaml").node
    restated = [
        key
        for key, value in option.items()
        if key != "defaults" and key in schema and OmegaConf.select(schema, key) == value
    ]
    assert not restated, f"{path.name} restates the schema's defaults for {restated}"
