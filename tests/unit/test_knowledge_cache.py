"""The parsed-YAML cache of the knowledge files: the same data as parsing, never stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketapath.knowledge import base
from ketapath.knowledge.base import data_path, read_yaml, safe_load

FILES = sorted(p.name for p in data_path(".").iterdir() if p.suffix == ".yaml")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("KETAPATH_CACHE_DIR", str(folder))
    return folder


@pytest.mark.parametrize("filename", FILES)
def test_a_cached_knowledge_file_reads_as_the_yaml_does(cache: Path, filename: str) -> None:
    path = data_path(filename)
    parsed = safe_load(path.read_text(encoding="utf-8"))
    first = read_yaml(path)  # parses and stores
    second = read_yaml(path)  # from the cache
    assert list(cache.glob("*.json"))
    # JSON keeps what the schemas read: dates become ISO text, integer keys text
    assert base.json.loads(base.json.dumps(parsed, default=base._json_value)) == second
    assert first == parsed


def test_a_changed_file_is_parsed_again(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text("kind: x\nversion: 1\nentries: []\n")
    assert read_yaml(path)["version"] == 1
    path.write_text("kind: x\nversion: 2\nentries: []\n")
    assert read_yaml(path)["version"] == 2


def test_a_corrupt_cache_entry_is_ignored(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text("kind: x\nversion: 3\nentries: []\n")
    read_yaml(path)
    for stored in cache.glob("*.json"):
        stored.write_text("{not json")
    assert read_yaml(path)["version"] == 3


def test_an_empty_cache_setting_turns_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KETAPATH_CACHE_DIR", "")
    assert base.cache_dir() is None
    path = tmp_path / "k.yaml"
    path.write_text("kind: x\nversion: 4\nentries: []\n")
    assert read_yaml(path)["version"] == 4
