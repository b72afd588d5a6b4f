"""`convo export` and `convo import`: a stream to a file (or stdout) and back, with one line saying what happened.

An export to a file is written beside it (`FILE.part`) and renamed into place once complete, so a failed export
never leaves a truncated file under the name asked for.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from entrypoints.stores import open_configured_store
from service.export import Format, begin_export
from service.importing import ImportRefused, ImportReport, import_export
from service.replay import StreamNotFound


async def export_stream(env: Mapping[str, str], stream: str, form: Format, output: str | None) -> int:
    """Write the stream in `form` to `output` (stdout when None); 1, with one line on stderr, for an unknown one."""
    store = await open_configured_store(env)
    try:
        try:
            export = await begin_export(store, stream)
        except StreamNotFound as missing:
            print(f"convo: {missing.args[0]}", file=sys.stderr)
            return 1
        if output is None:
            await _write(export.chunks(form), sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return 0
        target = Path(output)
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as file:
                await _write(export.chunks(form), file)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        print(f"exported {export.newest} events of stream {stream} to {output}", file=sys.stderr)
        return 0
    finally:
        await store.close()


async def _write(chunks: AsyncIterator[str], file: BinaryIO) -> None:
    async for chunk in chunks:
        file.write(chunk.encode())


async def import_file(env: Mapping[str, str], path: str, as_stream: str | None) -> int:
    """Import a JSON-lines export into the configured store; 1, with one line on stderr, when refused."""
    source = Path(path)
    if not await asyncio.to_thread(source.is_file):
        print(f"convo: {path}: no such file", file=sys.stderr)
        return 1
    store = await open_configured_store(env)
    try:
        report = await import_export(store, lambda: _lines(source), as_stream)
    except ImportRefused as refused:
        print(f"convo: {path}: {refused}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    print(_said(report))
    return 0


def _lines(source: Path) -> Iterator[bytes]:
    """The file's lines as bytes, split at newline characters only (a JSON string may hold U+2028 and the like)."""
    with source.open("rb") as file:
        yield from file


def _said(report: ImportReport) -> str:
    if report.written == 0:
        later = report.held_before - report.in_file
        more = f" (and {later} later ones)" if later else ""
        return f"stream {report.stream} already holds these {report.in_file} events{more}: nothing imported"
    if report.held_before:
        return (
            f"imported {report.written} events into stream {report.stream} "
            f"(it already held the first {report.held_before})"
        )
    return f"imported {report.written} events into stream {report.stream}"
