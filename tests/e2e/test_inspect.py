"""`convo inspect` in a real headless browser (Debian's chromium driven by Playwright, no browser download):
the stream list and its search, a timeline with the question, the exact prompt, a diff, a failure highlighted and
an undone turn marked, a view at one version, "ask again with…", the token guard; and the log never written."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from playwright import async_api as playwright_api

from adapters.sqlite.store import SqliteEventStore
from domain.commands import Sender
from domain.prompt import PromptPolicy, estimate_tokens
from service.conversations import ConversationService, Request
from tests.e2e.harness import API_KEY, run_cli
from tests.fakes import FakeChatModel, FakeImageModel
from tests.integration.test_what_if import digest

ANN = Sender(user_id=7, username="ann", first_name="Ann")
QUESTION = "Is <b>bold</b> & x < y safe here? " + "filler " * 12


def chromium() -> str:
    """Debian's chromium; its absence fails the test (CI installs it), never skips it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian's chromium is needed (apt-get install chromium): .ci/run installs it"
    return path


async def recorded(path: Path) -> None:
    """Ann's stream: four answered questions under a budget that drops the oldest, one failure, one undo."""
    store = SqliteEventStore(str(path))
    await store.init_schema()
    chat = FakeChatModel()
    service = ConversationService(
        store, chat, FakeImageModel(), PromptPolicy(persona="Be brief.", budget=150), estimate_tokens
    )
    try:
        await service.ask(Request("7", "tg:0", ANN), QUESTION)
        for n in range(1, 4):
            await service.ask(Request("7", f"tg:{n}", ANN), f"question {n} " + "word " * 15)
        chat.fail_next("timeout")
        await service.ask(Request("7", "tg:fail", ANN), "this one times out")
        await service.ask(Request("7", "tg:4", ANN), "question 4, soon undone")
        await service.undo(Request("7", "tg:undo", ANN))
    finally:
        await service.close()


def env_for(db: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "CONVO_STORE": f"sqlite:///{db}", "CONVO_LOG_LEVEL": "ERROR", **extra}
    return env | {name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ}


@contextlib.asynccontextmanager
async def inspector(env: Mapping[str, str], workdir: Path, listen: str = "127.0.0.1:0") -> AsyncIterator[str]:
    """`convo inspect` running; yields its base URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "entrypoints.cli", "inspect", "--listen", listen,
        env=dict(env), cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        found = re.search(r"http://\S+/", line)
        assert found, line + (await process.stderr.read()).decode() if process.stderr else line
        yield found.group().rstrip("/")
    finally:
        process.terminate()
        await process.wait()


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


def rendered(png: bytes) -> int:
    """How many distinct pixel rows a PNG screenshot holds (1 for a blank page): decoded by hand, no imaging
    library needed."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, data, width, channels = 8, b"", 0, 4
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, body = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, _, _, colour = struct.unpack(">IIBB", body[:10])
            channels = {2: 3, 6: 4, 0: 1, 4: 2}[colour]
        elif kind == b"IDAT":
            data += body
        offset += 12 + length
    raw = zlib.decompress(data)
    stride = 1 + width * channels
    return len({raw[start + 1 : start + stride] for start in range(0, len(raw), stride)})


async def test_the_timeline_shows_the_prompt_the_diff_a_failure_and_an_undo_and_writes_nothing(tmp_path, ai):
    db = tmp_path / "convo.db"
    await recorded(db)
    before = digest(db)
    env = env_for(db, OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=ai.base_url)
    async with inspector(env, tmp_path) as url, browser() as chrome:
        page = await chrome.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]

        await page.goto(url + "/")
        assert "@ann" in await page.inner_text("#streams")
        await page.fill("input[name=q]", "nobody-like-this")
        await page.click("text=search")
        assert "no stream matches" in await page.inner_text("main")
        await page.fill("input[name=q]", "ANN")
        await page.click("text=search")
        list_shot = await page.screenshot(path=str(tmp_path / "streams.png"))
        assert rendered(list_shot) > 20

        await page.click("#streams a")
        timeline = await page.inner_text("#timeline")
        assert "Is <b>bold</b> & x < y safe here?" in timeline  # escaped, shown as typed
        assert await page.locator("#timeline b:text('bold')").count() == 0  # never rendered as markup
        first_prompt = page.locator(".prompt").first
        assert "the exact prompt sent" in await first_prompt.inner_text()
        assert "Be brief." in await first_prompt.locator(".msg.system").inner_text()
        assert await page.locator(".prompt .badge.verified").count() >= 4
        dropped = page.locator(".diff .msg.dropped")
        assert await dropped.count() >= 1  # the budget dropped the oldest turn
        assert "Is <b>bold</b>" in await dropped.first.inner_text()
        failure = page.locator("tr.failure")
        assert "AnswerFailed" in await failure.first.inner_text()
        assert "timeout" in await failure.first.inner_text()
        assert await failure.first.evaluate("row => getComputedStyle(row).backgroundColor") == "rgb(255, 227, 227)"
        undone = page.locator("tr.undone")
        assert await undone.count() == 2  # the question and its answer
        assert "soon undone" in await undone.first.inner_text()
        shot = await page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)
        assert rendered(shot) > 100

        await page.goto(url + "/streams/7?at=4")
        assert "as it stood at version 4" in await page.inner_text("main")
        assert await page.locator("tr.at#v4").count() == 1
        assert await page.locator("#timeline tr[id]").count() == 4

        await page.goto(url + "/streams/7")
        ask = page.locator("details.ask").last
        await ask.locator("summary").click()
        await ask.locator("input[name=persona]").fill("concise")
        await ask.locator("button").click()
        await page.wait_for_selector("#new")
        assert "echo: question 4, soon undone" in await page.inner_text("#new")
        assert "You are a precise" in await page.inner_text("#new")
        assert "nothing was recorded" in await page.inner_text("main")
        assert rendered(await page.screenshot(path=str(tmp_path / "ask.png"))) > 20
    assert digest(db) == before


async def test_a_token_guards_every_page_and_a_cookie_is_set_once(tmp_path):
    db = tmp_path / "convo.db"
    await recorded(db)
    token = "s3cret-token-for-tests"
    async with inspector(env_for(db, CONVO_INSPECT_TOKEN=token), tmp_path) as url, browser() as chrome:
        page = await chrome.new_page()  # type: ignore[attr-defined]
        response = await page.goto(url + "/streams/7")
        assert response.status == 401 and "token" in await page.inner_text("main")
        response = await page.goto(url + "/streams/7?token=wrong")
        assert response.status == 401
        response = await page.goto(url + f"/streams/7?at=3&token={token}")
        assert response.status == 200 and page.url == url + "/streams/7?at=3"  # the token left the address
        assert (await page.context.cookies())[0]["httpOnly"]
        assert (await page.goto(url + "/")).status == 200
        bearer = await chrome.new_page(extra_http_headers={"Authorization": f"Bearer {token}"})  # type: ignore[attr-defined]
        assert (await bearer.goto(url + "/")).status == 200


async def test_a_non_loopback_address_without_a_token_is_refused_in_one_line(tmp_path):
    db = tmp_path / "convo.db"
    result = await run_cli(env_for(db), tmp_path, "inspect", "--listen", "0.0.0.0:8089")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "CONVO_INSPECT_TOKEN" in result.stderr
    assert not db.exists() or db.stat().st_size == 0


async def raw_request(base: str, target: str, headers: bytes = b"") -> tuple[int, dict[str, str]]:
    """One HTTP/1.1 request written byte for byte (so hostile headers and paths reach the server unchanged)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET " + target.encode() + b" HTTP/1.1\r\n" + headers + b"Connection: close\r\n\r\n")
    head = (await reader.read()).split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    writer.close()
    fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    return int(head[0].split()[1]), fields


async def test_hostile_requests_get_clear_refusals_with_the_security_headers(tmp_path):
    from entrypoints.inspect_pages import stream_href

    db = tmp_path / "convo.db"
    await recorded(db)
    token = "s3cret-token-for-tests"
    host = b"Host: 127.0.0.1\r\n"
    async with inspector(env_for(db, CONVO_INSPECT_TOKEN=token), tmp_path) as url:
        status, fields = await raw_request(url, f"/%2Fevil.com?token={token}", host)
        assert status == 303 and fields["Location"] == "/%2Fevil.com"  # never `//evil.com`, another site
        status, fields = await raw_request(url, f"//evil.com/?token={token}&a=1&a=2", host)
        assert status == 303 and fields["Location"] == "/evil.com/?a=1&a=2"
        status, fields = await raw_request(url, "/", host + b"Authorization: Bearer \xff\xfe\r\n")
        assert status == 401 and "default-src 'none'" in fields["Content-Security-Policy"]
        bearer = f"Authorization: Bearer {token}\r\n".encode()
        for query in ("at=%C2%B2", "at=" + "9" * 5000, "last=-1", "at=abc"):
            status, fields = await raw_request(url, f"/streams/7?{query}", host + bearer)
            assert status == 400 and "nosniff" in fields["X-Content-Type-Options"], query
    async with inspector(env_for(db), tmp_path) as url:
        status, fields = await raw_request(url, "/", b"Host: localhost:abc\r\n")
        assert status != 500 and "Content-Security-Policy" in fields  # the name is localhost: no crash
    assert stream_href("..") == "/streams/%2E%2E" and stream_href("a/b") == "/streams/a%2Fb"
    short = await run_cli(env_for(db, CONVO_INSPECT_TOKEN="short"), tmp_path, "inspect")
    assert short.returncode == 2 and short.stderr.count("\n") == 1 and "CONVO_INSPECT_TOKEN" in short.stderr
