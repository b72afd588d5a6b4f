"""`convo --version`: the version of the installed package, or of the source tree it runs from."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "convo"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
"""The directory above `entrypoints/`: the source tree's root, where pyproject.toml is when not installed."""


def package_version(distribution: str = DISTRIBUTION, source_root: Path = SOURCE_ROOT) -> str:
    """The installed distribution's version (its metadata); else, run from a source tree that was never installed,
    the version its pyproject.toml names; else `unknown`."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads((source_root / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return "unknown"
    version = project.get("version") if isinstance(project, dict) else None
    return version if isinstance(version, str) and version else "unknown"
