"""The organisation registry: names for outside orgIds and domains, read strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from reporting.errors import ConfigError
from reporting.report.registry import OrgRegistry, load_registry


def test_names_by_org_id_and_by_domain_or_parent_domain(tmp_path: Path) -> None:
    path = tmp_path / "orgs.toml"
    path.write_text(
        '[org_ids]\n"1eb65fdf-9643" = "Globex Inc."\n[domains]\n"@Initech.Example" = "Initech"\n',
        encoding="utf-8",
    )
    registry = load_registry(path)
    assert registry.name_of("1eb65fdf-9643") == "Globex Inc."
    assert registry.name_of("initech.example") == "Initech"
    assert registry.name_of("eu.initech.example") == "Initech"
    assert registry.name_of("notinitech.example") is None
    assert registry.name_of(None) is None
    assert len(registry.sha256 or "") == 64 and registry.path == str(path.resolve())
    assert OrgRegistry.from_json(registry.to_json()) == registry
    assert OrgRegistry.from_json(None) == OrgRegistry()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[org_ids\n", "not valid TOML"),
        ('[people]\n"x" = "y"\n', r"only \[org_ids\] and \[domains\]"),
        ('[domains]\n"a.example" = ""\n', "must be text"),
        ('[domains]\n"a.example" = 3\n', "must be text"),
        ('org_ids = "x"\n', "must be a table"),
    ],
)
def test_a_malformed_registry_is_refused_by_name(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "orgs.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load_registry(path)


def test_a_missing_registry_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_registry(tmp_path / "nope.toml")
