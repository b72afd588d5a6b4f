"""The image's HEALTHCHECK command, `python -m entrypoints.healthcheck`, against a real `convo bot`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.e2e.harness import bot_env, running_bot
from tests.e2e.test_webhook import free_port


async def probe(env: Mapping[str, str], workdir: Path) -> tuple[int, str]:
    """Run the health probe as the container engine does; its exit status and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "entrypoints.healthcheck",
        env=dict(env),
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    return process.returncode or 0, err.decode()


async def test_the_probe_passes_while_the_webhook_server_serves_and_fails_once_it_stops(tg, ai, tmp_path):
    port = free_port()
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_WEBHOOK_LISTEN=f"0.0.0.0:{port}")
    async with running_bot(env, tmp_path, "--webhook-url", f"http://127.0.0.1:{port}/hook"):
        await tg.wait_for(lambda: tg.webhook.active, timeout=20)
        assert await probe(env, tmp_path) == (0, "")
    code, err = await probe(env, tmp_path)
    assert code == 1
    assert err.startswith(f"unhealthy: http://127.0.0.1:{port}/healthz: ")


async def test_a_polling_bot_serves_no_healthz_so_the_probe_fails(tg, ai, tmp_path):
    port = free_port()
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_WEBHOOK_LISTEN=f"127.0.0.1:{port}")
    async with running_bot(env, tmp_path):
        await tg.wait_for(lambda: tg.calls_to("getUpdates"), timeout=20)
        code, err = await probe(env, tmp_path)
    assert code == 1
    assert err.startswith(f"unhealthy: http://127.0.0.1:{port}/healthz: ")
