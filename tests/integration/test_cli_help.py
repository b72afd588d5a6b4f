"""`convo --version`, and every `--help` saying where the settings come from: the real command, spawned."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from entrypoints.cli import SETTINGS_EPILOG, _parser

ENV = {"PATH": "/usr/bin:/bin", **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ}}


def convo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        env={**ENV, "COLUMNS": "200"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of the parser, as argument lists (the top level is the empty one)."""
    paths = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += command_paths(sub, (*path, name))
    return paths


def test_version_prints_the_installed_package_version_and_exits_0(tmp_path):
    done = convo("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"convo {metadata.version('convo')}\n"


@pytest.mark.parametrize("path", command_paths(_parser()), ids=lambda path: " ".join(path) or "convo")
def test_every_help_says_settings_come_from_the_environment_or_dotenv(path, tmp_path):
    done = convo(*path, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert " ".join(SETTINGS_EPILOG.split()) in " ".join(done.stdout.split())
    assert "environment variables" in done.stdout and ".env file in the working directory" in done.stdout


def test_the_help_is_true_a_dotenv_in_the_working_directory_is_read_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("CONVO_LOG_LEVEL=LOUD\n")
    done = convo("store", "init", cwd=tmp_path)
    assert done.returncode == 2 and "CONVO_LOG_LEVEL" in done.stderr and "'LOUD'" in done.stderr
    overridden = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "store", "init"],
        env={**ENV, "CONVO_LOG_LEVEL": "ERROR", "CONVO_STORE": f"sqlite:///{tmp_path}/x.db"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert overridden.returncode == 0, overridden.stderr
