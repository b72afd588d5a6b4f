"""Two webhook workers on one PostgreSQL database, every update delivered to both, under a bot-wide monthly cap.

Telegram's POST goes through a proxy that hands each update to worker A and, at once, the same update to worker B
(a duplicated delivery, as a retrying load balancer makes). Eight users ask two questions each, all at once, every
answer billed 1000 prompt and 500 completion tokens (0.002 USD) against a cap of five answers (0.010 USD).

Afterwards: every billed call is counted once (the ledger's tokens are the model calls' tokens, as many as the
answers in the logs), and spending passed the cap by no more than the calls that were in flight when it was
crossed (the README's bound): at most the model server's peak of concurrent calls, times one call's cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.harness import assert_log_clean, bot_env, run_cli, running_bot, texts
from tests.reliability.test_faults import WEBHOOK_SECRET, free_port, scratch_postgres, until
from tests.reliability.test_webhook_workers import HOP_BY_HOP, healthy

USERS = 8
QUESTIONS = 2
ANSWER_COST = Decimal("0.002")
CAP = Decimal("0.010")
PRICES = '[models."gpt-3.5-turbo"]\ninput = "1"\noutput = "2"\n'


@contextlib.asynccontextmanager
async def duplicating(ports: list[int]) -> AsyncIterator[str]:
    """A proxy that posts every update to each worker at once and answers Telegram with the first one's reply."""
    app = web.Application()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {key: value for key, value in request.headers.items() if key.lower() not in HOP_BY_HOP}

        async def post(port: int) -> tuple[int, bytes]:
            try:
                async with http.post(f"http://127.0.0.1:{port}{request.path_qs}", data=body, headers=headers) as answer:
                    return answer.status, await answer.read()
            except aiohttp.ClientError:
                return 502, b"502 Bad Gateway"

        (status, reply), *_ = await asyncio.gather(*(post(port) for port in ports))
        return web.Response(status=status, body=reply, content_type="application/json")

    app.router.add_post("/hook", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    async with aiohttp.ClientSession() as http:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}/hook"
        finally:
            await runner.cleanup()


@pytest.mark.postgres
@pytest.mark.slow
async def test_two_workers_given_every_update_twice_count_each_call_once_and_stop_at_the_cap(tg, ai, tmp_path):
    (tmp_path / "prices.toml").write_text(PRICES)
    ai.set_billing(1000, 500)
    ai.chunk_delay = 0.05
    users = [tg.register_user(tg.new_user(f"User{n}")) for n in range(USERS)]
    ports = [free_port(), free_port()]
    with scratch_postgres() as url:
        env = bot_env(
            tg,
            ai,
            url,
            CONVO_WEBHOOK_SECRET=WEBHOOK_SECRET,
            CONVO_CHAT_MODEL="gpt-3.5-turbo",
            CONVO_PRICES=str(tmp_path / "prices.toml"),
            CONVO_BUDGET_TOTAL_MONTH=str(CAP),
        )
        async with contextlib.AsyncExitStack() as stack:
            hook = await stack.enter_async_context(duplicating(ports))
            workers = []
            for name, port in zip("AB", ports, strict=True):
                (tmp_path / name).mkdir()
                worker_env = env | {"CONVO_WEBHOOK_LISTEN": f"127.0.0.1:{port}"}
                workers.append(
                    await stack.enter_async_context(running_bot(worker_env, tmp_path / name, "--webhook-url", hook))
                )
            for port in ports:
                await until(lambda port=port: healthy(port), "a worker to serve", timeout=30)
            for turn in range(QUESTIONS):
                for n, user in enumerate(users):
                    tg.send_text(user, f"u{n} q{turn}")

            def replied() -> bool:
                return all(len(texts(tg, user.id)) >= QUESTIONS for user in users)

            await tg.wait_for(replied, timeout=60)
            await ai.wait_until_idle(within=30)
            for worker in workers:
                assert_log_clean(worker, WEBHOOK_SECRET)
        report = await run_cli(env, tmp_path, "usage", "--json", "--by", "model")
    assert report.returncode == 0, report.stderr
    total = json.loads(report.stdout)["total"]
    calls = len(ai.chat_requests)
    assert total["input_tokens"] == 1000 * calls and total["output_tokens"] == 500 * calls  # each call counted once
    spent = Decimal(total["cost_usd"])
    print(f"\n{calls} model calls, at most {ai.max_in_flight} at once, {spent} USD spent of a {CAP} USD cap")
    assert spent == calls * ANSWER_COST
    assert calls >= CAP / ANSWER_COST  # the cap was reached...
    assert spent <= CAP + ai.max_in_flight * ANSWER_COST, (calls, ai.max_in_flight)  # ...and passed by the bound
    refused = sum(text.startswith("The bot has used up its monthly budget") for u in users for text in texts(tg, u.id))
    assert refused == USERS * QUESTIONS - calls
