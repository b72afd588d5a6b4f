"""`convo chat`'s `/file PATH [question]`: a local document, picture or sound goes through the bot's own use cases,
against the local OpenAI server, and the log records it as the bot would."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tests.doubles import media_samples
from tests.e2e.harness import API_KEY, replay_json, store_env


async def chat(ai, workdir: Path, lines: list[str], **extra: str) -> str:
    """Run `convo chat` with these input lines; its output."""
    env = {
        "PATH": "/usr/bin:/bin",
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": ai.base_url,
        "CONVO_STORE": f"sqlite:///{workdir}/convo.db",
        "CONVO_LOG_LEVEL": "ERROR",
        "CONVO_STREAM": "off",
        **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ},
        **extra,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "entrypoints.cli",
        "chat",
        "--user",
        "tester",
        env=env,
        cwd=workdir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate("\n".join(lines).encode() + b"\n"), 60)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_a_text_file_a_picture_and_a_sound_each_reach_the_model_and_the_log(ai, tmp_path):
    (tmp_path / "notes.md").write_text("# Plan\nShip the release on Friday.\n")
    picture = media_samples.jpeg(320, 240, seed="cli")
    (tmp_path / "photo.jpg").write_bytes(picture)
    (tmp_path / "memo.ogg").write_bytes(media_samples.ogg_opus(2))
    ai.set_transcript("what day is the release")
    output = await chat(
        ai,
        tmp_path,
        ["/file notes.md when do we ship?", "/file photo.jpg", "/file memo.ogg", "/file missing.txt"],
    )
    assert "(file notes.md:" in output
    assert "(picture photo.jpg, " in output and "echo: What is in this picture? [1 image(s)]" in output
    assert "(heard: “what day is the release”)" in output and "echo: what day is the release" in output
    assert "cannot read missing.txt" in output
    first, second, third = [request.last_user_text for request in ai.chat_requests]
    assert "Ship the release on Friday." in first and first.endswith("when do we ship?")
    assert second == "What is in this picture?" and [image.data for image in ai.chat_requests[1].images] == [picture]
    assert third == "what day is the release"
    assert len(ai.transcriptions) == 1
    document = await replay_json(store_env(tmp_path), tmp_path, "cli:tester")
    types = [event["type"] for event in document["events"]]
    assert types.count("QuestionAsked") == 3 and types.count("VoiceTranscribed") == 1
    photos = [event["data"]["photos"] for event in document["events"] if event["type"] == "QuestionAsked"][1]
    assert photos[0]["sha256"] == hashlib.sha256(picture).hexdigest()
