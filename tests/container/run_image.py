"""Runs the built image in webhook mode against the local Telegram and OpenAI servers, and checks one conversation.

`python -m tests.container.run_image IMAGE [--postgres URL] [--engine=COMMAND] [--run-option=...]...`
(build_and_run.sh calls it):
0. runs `convo --version` as the container's command, and the default command without CONVO_WEBHOOK_URL (it must
   stop at once, naming the variable);
1. starts the Telegram and OpenAI doubles on 127.0.0.1 in this process;
2. starts the image's default command in a container on the host's network, pointed at them, with the webhook
   server on a free loopback port; its store is the image's default (SQLite on the /data volume), or with
   `--postgres ADMIN_URL` a fresh database made on that server (dropped at the end), as compose.yaml configures it;
3. runs the image's own HEALTHCHECK (`podman healthcheck run`) until the engine calls the container healthy;
4. sends /start and one question and waits for both answers over the webhook;
5. checks inside the container that the bot runs as uid 10001, that `convo replay --list` lists exactly that
   user's stream, and (SQLite) that the database is on the /data volume;
6. stops the container with SIGTERM and checks it exits 0.
Exit status 0 when all of it held; otherwise 1, with the container's log and the step that failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from tests.doubles.openai_server import FakeOpenAI
from tests.doubles.telegram import FakeTelegram
from tests.e2e.harness import API_KEY, wait_for_text

HEALTHY_WITHIN = 120.0
"""Seconds the container has to start and pass its health check (start-up takes 5-20 s on a busy 2-core machine)."""
ANSWER_WITHIN = 30.0
"""Seconds for each answer."""
SECRET = "container-webhook-secret_0123"


class Failed(Exception):
    """A step did not hold; the message says which and what was seen."""


class Engine:
    """The container engine's command line, with the global options this machine needs."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        """`podman` and its global options, e.g. `podman --runtime=runc`."""

    async def __call__(self, *args: str, check: bool = True) -> tuple[int, str]:
        """Run the engine with ARGS; its exit status and its stdout and stderr together."""
        process = await asyncio.create_subprocess_exec(
            *self.command, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await process.communicate()
        text = out.decode(errors="replace")
        if check and process.returncode != 0:
            raise Failed(f"{shlex.join([*self.command, *args])} exited {process.returncode}: {text.strip()}")
        return process.returncode or 0, text


def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_healthy(engine: Engine, name: str, timeout: float = HEALTHY_WITHIN) -> float:  # noqa: ASYNC109
    """Run the image's health check until it passes; seconds it took. The engine schedules checks through systemd,
    which this machine lacks, so each one is run by hand: the same command, and the same status it records."""
    started = time.monotonic()
    last = ""
    while time.monotonic() - started < timeout:
        code, last = await engine("healthcheck", "run", name, check=False)
        if code == 0:
            _, status = await engine("inspect", "--format", "{{.State.Health.Status}}", name)
            if status.strip() != "healthy":
                raise Failed(f"the health check passed but the engine says {status.strip()!r}")
            return time.monotonic() - started
        _, running = await engine("inspect", "--format", "{{.State.Running}}", name)
        if running.strip() != "true":
            raise Failed("the container stopped before it was healthy")
        await asyncio.sleep(1.0)
    raise Failed(f"not healthy within {timeout:.0f} s; the last check said: {last.strip()}")


@asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[str]:
    """A new database on the server `admin_url` reaches (its URL yielded), dropped WITH (FORCE) afterwards."""
    name = f"convo_image_{uuid.uuid4().hex[:12]}"
    try:
        async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        raise Failed(f"cannot make a database on the PostgreSQL server at {admin_url}: {error}") from None
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            await admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def commands(engine: Engine, image: str, options: Sequence[str]) -> None:
    """Step 0: another command in the image, and the default command's one line when the webhook URL is missing."""
    _, version = await engine("run", "--rm", *options, image, "convo", "--version")
    if not version.strip().splitlines()[-1].startswith("convo "):
        raise Failed(f"`convo --version` in the image printed {version.strip()!r}")
    code, said = await engine("run", "--rm", "--no-healthcheck", *options, image, check=False)
    if code == 0 or "set CONVO_WEBHOOK_URL" not in said:
        raise Failed(f"without CONVO_WEBHOOK_URL the image exited {code} saying {said.strip()!r}")
    print("convo --version runs in the image; a missing CONVO_WEBHOOK_URL stops it with one line", flush=True)


async def conversation(engine: Engine, image: str, options: Sequence[str], postgres: str | None) -> None:
    """Steps 0-6 of the module's docstring."""
    await commands(engine, image, options)
    if postgres is None:
        await conversation_on(engine, image, options, None)
        return
    async with scratch_database(postgres) as store:
        await conversation_on(engine, image, options, store)


async def conversation_on(engine: Engine, image: str, options: Sequence[str], store: str | None) -> None:
    """Steps 1 and 3-6, with the container's store at `store` (None: the image's default)."""
    name = f"convo-image-test-{os.getpid()}"
    port = free_port()
    async with FakeTelegram() as tg, FakeOpenAI(api_key=None) as ai:
        env = {
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE": tg.api_base,
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": ai.base_url,
            "CONVO_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
            "CONVO_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
            "CONVO_WEBHOOK_SECRET": SECRET,
        } | ({} if store is None else {"CONVO_STORE": store})
        settings = [f"--env={key}={value}" for key, value in env.items()]
        await engine("run", "--detach", f"--name={name}", "--network=host", *options, *settings, image)
        try:
            took = await wait_healthy(engine, name)
            print(f"healthy after {took:.1f} s", flush=True)
            alice = tg.new_user("Alice")
            tg.send_command(alice, "start")
            await wait_for_text(tg, alice.id, "Hello, Alice", timeout=ANSWER_WITHIN)
            tg.send_text(alice, "asked through the container")
            await wait_for_text(tg, alice.id, "echo: asked through the container", timeout=ANSWER_WITHIN)
            if tg.webhook.url != env["CONVO_WEBHOOK_URL"] or tg.calls_to("getUpdates"):
                raise Failed("the image's default command did not serve the webhook")
            print("one question answered over the webhook", flush=True)
            await inside(engine, name, str(alice.id), on_volume=store is None)
            await engine("stop", "--time=30", name)
            _, exit_code = await engine("inspect", "--format", "{{.State.ExitCode}}", name)
            if exit_code.strip() != "0":
                raise Failed(f"SIGTERM ended the bot with exit status {exit_code.strip()}")
            print("stopped cleanly by SIGTERM", flush=True)
        except (Failed, TimeoutError):
            _, log = await engine("logs", name, check=False)
            print(f"--- container log ---\n{log}--- end of container log ---", file=sys.stderr)
            raise
        finally:
            await engine("rm", "--force", "--volumes", name, check=False)


async def inside(engine: Engine, name: str, stream: str, *, on_volume: bool) -> None:
    """Step 5: the bot's user, the streams its store lists, and (on_volume) where the SQLite file is."""
    _, uid = await engine("exec", name, "id", "-u")
    if uid.strip() != "10001":
        raise Failed(f"the container runs as uid {uid.strip()}, not 10001")
    _, listing = await engine("exec", name, "convo", "replay", "--list", "--json")
    streams = [item["stream"] for item in json.loads(listing)["streams"]]
    if streams != [stream]:
        raise Failed(f"the store lists {streams}, not the one user's stream {stream}")
    if on_volume:
        _, mounts = await engine("inspect", "--format", "{{range .Mounts}}{{.Destination}} {{end}}", name)
        await engine("exec", name, "test", "-s", "/data/convo.db")
        if "/data" not in mounts.split():
            raise Failed(f"/data is not a volume of the container (mounts: {mounts.strip()})")
    print(f"uid 10001; the store lists the one stream{'; the database is on the /data volume' * on_volume}")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the steps; 0 when they all held."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("image", help="the image to run, e.g. localhost/convo:test")
    parser.add_argument(
        "--engine",
        default="podman",
        help="the engine's command with the global options this machine needs, e.g. 'podman --runtime=runc'",
    )
    parser.add_argument(
        "--run-option",
        action="append",
        default=[],
        help="an option of `podman run` this machine needs (repeatable), e.g. --run-option=--ulimit=nofile=1024:1024",
    )
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="store the conversation in a fresh database on this PostgreSQL server instead of SQLite on /data",
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(conversation(Engine(shlex.split(args.engine)), args.image, args.run_option, args.postgres))
    except Failed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    except TimeoutError:
        print("FAILED: an answer did not arrive in time (see the container log above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
