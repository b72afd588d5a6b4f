"""Prometheus metrics: `/metrics` scraped over HTTP before and after a real conversation with `convo bot`, on
CONVO_METRICS_LISTEN in polling mode and on the webhook server in webhook mode; each metric's change asserted."""

from __future__ import annotations

import asyncio
import socket

from domain.events import FAILURE_KINDS
from tests.e2e.harness import bot_env, run_cli, running_bot, wait_for_text
from tests.e2e.metrics_scrape import Scrape, delta, scrape, scrape_when
from tests.e2e.test_config_errors import is_log_record
from tests.e2e.test_webhook import SECRET, free_port

MODEL = "gpt-4o-mini"
UPDATES = "convo_updates_total"
TOKENS = "convo_model_tokens_total"
FAILURES = "convo_failures_total"
LATENCY = "convo_model_latency_seconds"
FIRST_TOKEN = "convo_model_first_token_seconds"
APPEND = "convo_store_append_seconds"
WAITING = "convo_updates_waiting"


def grew(before: Scrape, name: str, by: float = 1, **labels: str):
    """A `scrape_when` condition: the series grew by `by` since `before`."""
    return lambda now: delta(before, now, name, **labels) >= by


def idle(now: Scrape) -> bool:
    """A `scrape_when` condition: no update is waiting (one is done just after it is counted)."""
    return now.value(WAITING) == 0


def both(*conditions):
    """A `scrape_when` condition: all of them."""
    return lambda now: all(condition(now) for condition in conditions)


def failures_grown(before: Scrape, after: Scrape) -> dict[tuple[str, str], float]:
    """The failure series that changed, by (request, kind)."""
    changed = {}
    for labels, value in after.series(FAILURES).items():
        grown = value - before.value(FAILURES, **dict(labels))
        if grown:
            found = dict(labels)
            changed[(found["request"], found["kind"])] = grown
    return changed


async def test_polling_metrics_count_updates_tokens_latency_failures_appends_and_waiting(tg, ai, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    env = bot_env(
        tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_METRICS_LISTEN=f"127.0.0.1:{port}", CONVO_CHAT_MODEL=MODEL
    )
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path):
        start = await scrape(url)
        assert start.value(WAITING) == 0
        assert {(dict(labels)["request"], dict(labels)["kind"]) for labels in start.series(FAILURES)} == {
            (request, kind) for request in ("answer", "image", "transcription") for kind in FAILURE_KINDS
        }, "every failure series is there, at 0, from the start"
        assert set(start.series(FAILURES).values()) == {0.0}

        # one greeting and one answered question, billed 11 + 7 tokens by the model server
        tg.send_command(alice, "start")
        await wait_for_text(tg, alice.id, "Hello, Alice")
        ai.set_billing(11, 7)
        tg.send_text(alice, "count me")
        await wait_for_text(tg, alice.id, "echo: count me")
        answered = await scrape_when(url, both(grew(start, UPDATES, kind="message", outcome="answered"), idle))
        assert delta(start, answered, UPDATES, kind="message", outcome="answered") == 1
        assert delta(start, answered, UPDATES, kind="message", outcome="handled") == 1  # /start
        assert delta(start, answered, TOKENS, model=MODEL, kind="prompt") == 11
        assert delta(start, answered, TOKENS, model=MODEL, kind="completion") == 7
        assert delta(start, answered, f"{LATENCY}_count", model=MODEL) == 1
        assert delta(start, answered, f"{FIRST_TOKEN}_count", model=MODEL) == 1
        assert delta(start, answered, f"{FIRST_TOKEN}_sum", model=MODEL) > 0
        assert delta(start, answered, f"{FIRST_TOKEN}_sum", model=MODEL) <= delta(
            start, answered, f"{LATENCY}_sum", model=MODEL
        )
        # registration, the question, the prompt settings, the answer, its delivery: one append or more each
        assert delta(start, answered, f"{APPEND}_count", store="sqlite") >= 4
        assert delta(start, answered, f"{APPEND}_sum", store="sqlite") > 0
        assert failures_grown(start, answered) == {}

        # the model server rejects the key: one failure of kind auth, nothing billed
        ai.fail_next("invalid_api_key")
        tg.send_text(alice, "the key is rejected")
        await wait_for_text(tg, alice.id, "misconfigured")
        failed = await scrape_when(url, grew(answered, UPDATES, kind="message", outcome="failed"))
        assert failures_grown(answered, failed) == {("answer", "auth"): 1}
        assert delta(answered, failed, f"{TOKENS}", model=MODEL, kind="prompt") == 0
        assert delta(answered, failed, f"{LATENCY}_count", model=MODEL) == 0

        # a slow model: the update is waiting in this process while it answers; its first words come after 1.5 s,
        # its last ones at least 1.5 s later
        ai.fail_next("slow", delay=1.5, chunk_delay=0.3)
        tg.send_text(alice, "a slow answer please")
        await ai.wait_for_in_flight(1)
        assert (await scrape(url)).value(WAITING) == 1
        await wait_for_text(tg, alice.id, "echo: a slow answer please", timeout=30)
        slow = await scrape_when(url, both(grew(failed, UPDATES, kind="message", outcome="answered"), idle))
        assert delta(failed, slow, f"{FIRST_TOKEN}_count", model=MODEL) == 1
        assert delta(failed, slow, f"{FIRST_TOKEN}_bucket", model=MODEL, le="1.0") == 0
        assert delta(failed, slow, f"{LATENCY}_bucket", model=MODEL, le="2.0") == 0
        first_words = delta(failed, slow, f"{FIRST_TOKEN}_sum", model=MODEL)
        assert delta(failed, slow, f"{LATENCY}_sum", model=MODEL) - first_words >= 1.0

        # Telegram sends the answered question's update again, and one aiogram cannot parse
        question = next(update for update in tg.updates if update.get("message", {}).get("text") == "count me")
        tg.push_update(dict(question))
        tg.push_update({"message": {"message_id": 1, "date": "not a date", "chat": {"id": alice.id}, "text": "?"}})
        odd = await scrape_when(
            url,
            both(
                grew(slow, UPDATES, kind="message", outcome="duplicate"),
                grew(slow, UPDATES, kind="message", outcome="poison"),
            ),
        )
        assert delta(slow, odd, UPDATES, kind="message", outcome="duplicate") == 1
        assert delta(slow, odd, UPDATES, kind="message", outcome="poison") == 1
        assert delta(slow, odd, UPDATES, kind="message", outcome="answered") == 0
        assert delta(slow, odd, TOKENS, model=MODEL, kind="prompt") == 0


async def test_the_webhook_server_serves_metrics(tg, ai, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    env = bot_env(
        tg,
        ai,
        f"sqlite:///{tmp_path}/convo.db",
        CONVO_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        CONVO_WEBHOOK_SECRET=SECRET,
        CONVO_CHAT_MODEL=MODEL,
    )
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path, "--webhook-url", f"http://127.0.0.1:{port}/hook"):
        await tg.wait_for(lambda: tg.webhook.active, timeout=20)
        before = await scrape(url)
        ai.set_billing(5, 3)
        tg.send_text(alice, "over the hook")
        await wait_for_text(tg, alice.id, "echo: over the hook")
        question = next(update for update in tg.updates if update.get("message", {}).get("text") == "over the hook")
        assert await tg.deliver_webhook(dict(question)) == 200  # Telegram sends it again
        after = await scrape_when(
            url,
            both(
                grew(before, UPDATES, kind="message", outcome="answered"),
                grew(before, UPDATES, kind="message", outcome="duplicate"),
                idle,
            ),
        )
        assert delta(before, after, UPDATES, kind="message", outcome="answered") == 1
        assert delta(before, after, UPDATES, kind="message", outcome="duplicate") == 1
        assert delta(before, after, TOKENS, model=MODEL, kind="prompt") == 5
        assert delta(before, after, TOKENS, model=MODEL, kind="completion") == 3
        assert delta(before, after, f"{LATENCY}_count", model=MODEL) == 1
        assert delta(before, after, f"{FIRST_TOKEN}_count", model=MODEL) == 1
        assert delta(before, after, f"{APPEND}_count", store="sqlite") >= 3
        assert failures_grown(before, after) == {}


async def test_a_metrics_address_taken_stops_start_up_with_one_line(tg, ai, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_METRICS_LISTEN=f"127.0.0.1:{port}")
        result = await asyncio.wait_for(run_cli(env, tmp_path, "bot"), 60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if not is_log_record(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"convo: error: cannot listen on 127.0.0.1:{port} (CONVO_METRICS_LISTEN)"), lines[0]
    assert tg.calls_to("getUpdates") == []
