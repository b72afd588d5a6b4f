"""`convo export` and `convo import` as a user runs them, on SQLite files: what they print and how they exit."""

from __future__ import annotations

import json

from adapters.sqlite.store import SqliteEventStore
from tests.contract.test_export_import_contract import source_stream
from tests.e2e.harness import run_cli
from tests.integration.test_store_cli import cli_env


async def seed(path, stream: str = "4242") -> None:
    store = SqliteEventStore.from_url(f"sqlite:///{path}")
    await store.init_schema()
    await store.import_recorded(source_stream(stream))
    await store.close()


async def test_export_import_twice_and_export_again_gives_the_same_file(tmp_path):
    await seed(tmp_path / "a.db")
    source, target = cli_env("sqlite:///a.db"), cli_env("sqlite:///b.db")

    exported = await run_cli(source, tmp_path, "export", "4242", "-o", "out.jsonl")
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr.strip() == f"exported {len(source_stream())} events of stream 4242 to out.jsonl"
    on_stdout = await run_cli(source, tmp_path, "export", "4242")
    data = (tmp_path / "out.jsonl").read_bytes()
    assert on_stdout.stdout.encode() == data
    assert [json.loads(line)["version"] for line in data.splitlines()] == list(range(1, len(source_stream()) + 1))
    assert not list(tmp_path.glob("*.part"))

    first = await run_cli(target, tmp_path, "import", "out.jsonl")
    assert (first.returncode, first.stdout.strip()) == (0, f"imported {len(source_stream())} events into stream 4242")
    second = await run_cli(target, tmp_path, "import", "out.jsonl")
    assert second.returncode == 0
    assert second.stdout.strip() == f"stream 4242 already holds these {len(source_stream())} events: nothing imported"

    again = await run_cli(target, tmp_path, "export", "4242", "-o", "again.jsonl")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.jsonl").read_bytes() == data


async def test_an_unknown_user_is_one_line_pointing_at_the_stream_list(tmp_path):
    await seed(tmp_path / "a.db")

    result = await run_cli(cli_env("sqlite:///a.db"), tmp_path, "export", "999", "-o", "out.jsonl")

    assert result.returncode == 1
    assert result.stderr == "convo: no events for stream '999' (convo replay --list shows the streams)\n"
    assert not (tmp_path / "out.jsonl").exists()


async def test_the_markdown_transcript(tmp_path):
    await seed(tmp_path / "a.db")

    result = await run_cli(cli_env("sqlite:///a.db"), tmp_path, "export", "4242", "--format", "md")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# Conversation 4242\n\n{len(source_stream())} events recorded")
    assert "**User:** Ann (@ann) · Telegram id 42 · language en · v1 · " in result.stdout
    assert "### Answer · v13 · " in result.stdout


async def test_import_refuses_a_stream_with_other_events_and_a_broken_file_in_one_line(tmp_path):
    await seed(tmp_path / "a.db")
    await seed(tmp_path / "b.db")
    env = cli_env("sqlite:///a.db")
    assert (await run_cli(env, tmp_path, "export", "4242", "-o", "out.jsonl")).returncode == 0
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "other.jsonl").write_text(lines[0].replace('"Ann"', '"Bob"') + "".join(lines[1:]), encoding="utf-8")
    (tmp_path / "gap.jsonl").write_text(lines[0] + lines[2], encoding="utf-8")

    other = await run_cli(cli_env("sqlite:///b.db"), tmp_path, "import", "other.jsonl")
    assert other.returncode == 1
    assert other.stderr == (
        "convo: other.jsonl: stream '4242' already holds other events: its version 1 differs from line 1 of the "
        "file; nothing imported\n"
    )
    gap = await run_cli(cli_env("sqlite:///c.db"), tmp_path, "import", "gap.jsonl")
    assert (gap.returncode, gap.stderr) == (
        1,
        "convo: gap.jsonl: line 2: version 3 where 2 was expected (a gap or repeat)\n",
    )
    missing = await run_cli(cli_env("sqlite:///c.db"), tmp_path, "import", "nowhere.jsonl")
    assert (missing.returncode, missing.stderr) == (1, "convo: nowhere.jsonl: no such file\n")

    renamed = await run_cli(cli_env("sqlite:///b.db"), tmp_path, "import", "other.jsonl", "--as", "5")
    assert (renamed.returncode, renamed.stdout) == (0, f"imported {len(source_stream())} events into stream 5\n")
    copy = await run_cli(cli_env("sqlite:///b.db"), tmp_path, "export", "5")
    assert copy.stdout == "".join(lines).replace('"stream":"4242"', '"stream":"5"').replace('"Ann"', '"Bob"', 1)
