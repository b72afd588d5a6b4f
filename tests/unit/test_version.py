"""`package_version`: the installed metadata first, then the source tree's pyproject.toml, then `unknown`."""

from __future__ import annotations

import tomllib
from importlib import metadata

from entrypoints.version import SOURCE_ROOT, package_version


def test_the_installed_distribution_is_asked_first():
    assert package_version() == metadata.version("convo")


def test_a_source_tree_never_installed_reads_its_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "convo"\nversion = "9.8.7"\n')
    assert package_version("convo-not-installed", tmp_path) == "9.8.7"


def test_this_source_tree_names_the_version_its_pyproject_declares():
    assert (SOURCE_ROOT / "pyproject.toml").is_file()
    declared = tomllib.loads((SOURCE_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert package_version("convo-not-installed") == declared


def test_nothing_to_go_by_is_unknown(tmp_path):
    assert package_version("convo-not-installed", tmp_path) == "unknown"
    (tmp_path / "pyproject.toml").write_text("not toml = = =")
    assert package_version("convo-not-installed", tmp_path) == "unknown"
