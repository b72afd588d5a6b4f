"""The OpenAI adapters through the real openai client against the local fake of the API (tests/doubles)."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable
from typing import Any

import openai
import pytest
from structlog.testing import capture_logs

from adapters.openai.chat import OpenAIChatModel
from adapters.openai.images import OpenAIImageModel, sha256_ref
from adapters.openai.retry import RetryPolicy
from domain.ports import ModelFailure
from domain.prompt import Message
from tests.doubles.openai_server import FakeOpenAI, count_tokens, prompt_tokens

KEY = "sk-test-Secret0123456789abcdefXYZ"
FAST = RetryPolicy(attempts=4, total_seconds=5.0, base_delay=0.01, max_delay=0.05)
PROMPT = (
    Message("system", "You are terse."),
    Message("user", "What is the capital of France?"),
    Message("assistant", "Paris."),
    Message("user", "And of Spain?"),
)
WIRE = [{"role": m.role, "content": m.content} for m in PROMPT]


@pytest.fixture
async def fake():
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.fixture(params=["aiohttp", "httpx"])
async def client(fake, request):
    """The client as the bot builds it (aiohttp transport), and with the SDK's default transport."""
    transport = {"http_client": openai.DefaultAioHttpClient()} if request.param == "aiohttp" else {}
    api = openai.AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, **transport)
    yield api
    await api.close()


def chat(client: openai.AsyncOpenAI, **options: Any) -> OpenAIChatModel:
    settings: dict[str, Any] = {"model": "gpt-4o", "max_tokens": 256, "timeout": 2.0, "retry": FAST}
    return OpenAIChatModel(client, **(settings | options))


def images(client: openai.AsyncOpenAI, **options: Any) -> OpenAIImageModel:
    settings: dict[str, Any] = {"model": "dall-e-2", "size": "256x256", "timeout": 2.0, "retry": FAST}
    return OpenAIImageModel(client, **(settings | options))


class Texts:
    """An on_text callback that remembers what it was given."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, text: str) -> None:
        self.seen.append(text)


class Waits:
    """A retry policy's `sleep` that waits for nothing and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


async def failure_of(awaitable: Awaitable[object]) -> ModelFailure:
    with pytest.raises(ModelFailure) as caught:
        await awaitable
    return caught.value


# ---------------------------------------------------------------------------------------------- requests and answers


async def test_sends_exactly_the_prompt_model_and_limit(fake, client):
    await chat(client).answer(PROMPT, Texts())
    body = fake.chat_requests[-1].body
    assert body["messages"] == WIRE
    assert body["model"] == "gpt-4o"
    assert body["max_tokens"] == 256
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "temperature" not in body
    assert "max_completion_tokens" not in body


async def test_sends_temperature_and_no_limit_when_so_configured(fake, client):
    await chat(client, max_tokens=None, temperature=0.2).answer(PROMPT)
    body = fake.chat_requests[-1].body
    assert body["temperature"] == 0.2
    assert "max_tokens" not in body
    assert "max_completion_tokens" not in body


async def test_streaming_gives_growing_text_then_the_completion_with_usage(fake, client):
    fake.set_answer("Madrid is the capital of Spain.")
    texts = Texts()
    completion = await chat(client).answer(PROMPT, texts)
    assert completion.text == "Madrid is the capital of Spain."
    assert completion.model == "gpt-4o"
    assert completion.prompt_tokens == prompt_tokens(WIRE)
    assert completion.completion_tokens == count_tokens(completion.text)
    assert len(texts.seen) == count_tokens(completion.text)  # one call per delta, none for the empty role chunk
    assert all(later.startswith(earlier) for earlier, later in zip(texts.seen, texts.seen[1:], strict=False))
    assert texts.seen[-1] == completion.text


async def test_non_streaming_when_streaming_is_off_or_nobody_listens(fake, client):
    texts = Texts()
    completion = await chat(client, stream=False).answer(PROMPT, texts)
    assert texts.seen == []
    assert completion.text == "echo: And of Spain?"
    assert completion.prompt_tokens == prompt_tokens(WIRE)
    assert completion.completion_tokens == count_tokens(completion.text)
    await chat(client).answer(PROMPT)
    assert [r.body.get("stream") for r in fake.chat_requests] == [None, None]


async def test_an_unknown_model_name_just_works(fake, client):
    model = chat(client, model="my-local-llama:3b-q4")
    completion = await model.answer(PROMPT, Texts())
    assert model.name == "my-local-llama:3b-q4"
    assert completion.model == "my-local-llama:3b-q4"
    assert fake.chat_requests[-1].model == "my-local-llama:3b-q4"


@pytest.mark.parametrize("stream", [True, False])
async def test_falls_back_to_max_completion_tokens_when_max_tokens_is_unsupported(fake, client, stream):
    fake.fail_next(
        "error",
        status=400,
        code="unsupported_parameter",
        param="max_tokens",
        message="Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
    )
    model = chat(client, model="o3-mini", stream=stream)
    await model.answer(PROMPT, Texts())
    await model.answer(PROMPT, Texts())
    first, second, third = (r.body for r in fake.chat_requests)
    assert first["max_tokens"] == 256
    assert "max_tokens" not in second
    assert second["max_completion_tokens"] == 256
    assert third["max_completion_tokens"] == 256


async def test_drops_an_unsupported_temperature(fake, client):
    fake.fail_next(
        "error",
        status=400,
        code="unsupported_value",
        param="temperature",
        message="Unsupported value: 'temperature' does not support 0.2 with this model.",
    )
    await chat(client, temperature=0.2).answer(PROMPT)
    assert [("temperature" in r.body) for r in fake.chat_requests] == [True, False]


async def test_drops_stream_options_for_a_server_that_rejects_them(fake, client):
    fake.fail_next("error", status=400, param=None, message="Unrecognized request argument supplied: 'stream_options'")
    completion = await chat(client).answer(PROMPT, Texts())
    assert completion.text == "echo: And of Spain?"
    assert completion.prompt_tokens == 0  # no usage chunk without include_usage
    assert ["stream_options" in r.body for r in fake.chat_requests] == [True, False]


# ---------------------------------------------------------------------------------------------- retried failures


async def test_rate_limit_then_success_waits_as_long_as_the_server_asks(fake, client):
    fake.fail_next("rate_limit", retry_after=0.2)
    waits = Waits()
    no_jitter = RetryPolicy(attempts=3, total_seconds=5.0, base_delay=0.01, random=lambda: 0.0, sleep=waits)
    completion = await chat(client, retry=no_jitter).answer(PROMPT, Texts())
    assert len(fake.chat_requests) == 2
    assert waits.seconds == [pytest.approx(0.2)]  # retry-after-ms, not the zero backoff
    assert completion.text == "echo: And of Spain?"


async def test_rate_limited_for_good_reports_the_servers_wait(fake, client):
    fake.fail_always("rate_limit", retry_after=0.05)
    failure = await failure_of(chat(client).answer(PROMPT, Texts()))
    assert failure.kind == "rate_limited"
    assert failure.retry_after == pytest.approx(0.05)
    assert len(fake.chat_requests) == FAST.attempts


async def test_a_wait_longer_than_the_time_left_fails_at_once_with_that_wait(fake, client):
    fake.fail_always("rate_limit", retry_after=3.0)
    waits = Waits()
    failure = await failure_of(
        chat(client, retry=RetryPolicy(attempts=5, total_seconds=1.0, sleep=waits)).answer(PROMPT)
    )
    assert waits.seconds == []  # given up at once, not after waiting
    assert (failure.kind, failure.retry_after) == ("rate_limited", 3.0)
    assert len(fake.chat_requests) == 1


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("server_error", {}),
        ("server_error", {"status": 504}),
        ("bad_gateway", {"html": True}),
        ("overloaded", {}),
        ("malformed", {}),
        ("stream_error", {}),
        ("cut", {}),
        ("cut", {"clean": True}),
        ("malformed", {"after_chunks": 2}),
    ],
)
@pytest.mark.parametrize("stream", [True, False])
async def test_transient_failures_are_retried(fake, client, kind, options, stream):
    fake.fail_next(kind, **options)
    completion = await chat(client, stream=stream).answer(PROMPT, Texts())
    assert completion.text == "echo: And of Spain?"
    assert len(fake.chat_requests) == 2


async def test_a_cut_stream_is_requested_again_and_the_text_restarts(fake, client):
    fake.set_answer("one two three four five six")
    fake.fail_next("cut", after_chunks=4)
    texts = Texts()
    completion = await chat(client).answer(PROMPT, texts)
    assert completion.text == "one two three four five six"
    assert texts.seen[:4] == ["one", "one two", "one two three", "one"]
    assert texts.seen[-1] == completion.text
    assert completion.completion_tokens == 6


async def test_a_stream_cut_after_its_finish_keeps_the_answer(fake, client):
    fake.set_answer("all here")
    fake.fail_next("cut", after_chunks=4)  # role, "all", " here", finish; the usage chunk never comes
    completion = await chat(client).answer(PROMPT, Texts())
    assert (completion.text, completion.prompt_tokens, completion.completion_tokens) == ("all here", 0, 0)
    assert len(fake.chat_requests) == 1


async def test_a_hanging_server_times_out_after_bounded_attempts(fake, client):
    """Two attempts within the 30 s budget: each was ended by its own 0.2 s timeout (an attempt that hung on
    would have used up the whole budget alone)."""
    fake.fail_always("hang")
    policy = RetryPolicy(attempts=2, total_seconds=30.0, base_delay=0.01)
    failure = await failure_of(chat(client, timeout=0.2, retry=policy).answer(PROMPT))
    assert failure.kind == "timeout"
    assert len(fake.chat_requests) == 2


async def test_a_stalled_stream_times_out_and_is_retried(fake, client):
    fake.fail_next("stall")
    texts = Texts()
    completion = await chat(client, timeout=0.3).answer(PROMPT, texts)
    assert completion.text == "echo: And of Spain?"
    assert texts.seen[0] == "echo"
    assert len(fake.chat_requests) == 2


async def test_a_slow_but_steady_stream_is_not_cut(fake, client):
    fake.fail_next("slow", delay=0.0, chunk_delay=0.1)
    completion = await chat(client, timeout=0.3).answer(PROMPT, Texts())  # ~0.6 s in all, never 0.3 s silent
    assert completion.text == "echo: And of Spain?"
    assert len(fake.chat_requests) == 1


async def test_time_spent_in_on_text_is_not_server_silence(fake, client):
    fake.set_answer("slow reader")

    async def slow_reader(text: str) -> None:
        await asyncio.sleep(0.25)

    completion = await chat(client, timeout=0.2).answer(PROMPT, slow_reader)
    assert completion.text == "slow reader"
    assert len(fake.chat_requests) == 1


async def test_the_total_time_bounds_all_attempts(fake, client):
    """A hanging attempt is ended by the 0.6 s budget for all attempts, not by its own 60 s timeout, and no
    attempt starts once the budget is spent. (The guard separates the two outcomes, 0.6 s or 60 s, by far more
    than any slowness of the machine.)"""
    fake.fail_always("hang")
    policy = RetryPolicy(attempts=50, total_seconds=0.6, base_delay=0.01)
    async with asyncio.timeout(20):
        failure = await failure_of(chat(client, timeout=60.0, retry=policy).answer(PROMPT, Texts()))
    assert failure.kind == "timeout"
    assert len(fake.chat_requests) == 1


async def test_failing_for_good_after_retries_says_how_many_attempts(fake, client):
    fake.fail_always("server_error")
    failure = await failure_of(chat(client).answer(PROMPT))
    assert failure.kind == "upstream"
    assert "500" in failure.message
    assert "after 4 attempts" in failure.message
    assert len(fake.chat_requests) == 4


# ---------------------------------------------------------------------------------------------- final failures


@pytest.mark.parametrize("code", ["content_policy_violation", "content_filter", "invalid_prompt"])
async def test_a_refused_prompt_is_content_refused_without_retry(fake, client, code):
    fake.fail_next("content_policy", code=code)
    failure = await failure_of(chat(client).answer(PROMPT, Texts()))
    assert failure.kind == "content_refused"
    assert len(fake.chat_requests) == 1


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("kind", ["content_filter", "refusal"])
async def test_a_filtered_or_refused_answer_is_content_refused_without_retry(fake, client, stream, kind):
    fake.fail_next(kind)
    fake.set_billing(120, 7)
    failure = await failure_of(chat(client, stream=stream).answer(PROMPT, Texts()))
    assert failure.kind == "content_refused"
    assert len(fake.chat_requests) == 1
    assert failure.billed is not None  # the server billed the refused call: the ledger counts it
    assert (failure.billed.prompt_tokens, failure.billed.completion_tokens) == (120, 7)


async def test_a_prompt_over_the_context_window_is_context_too_long(fake, client):
    fake.fail_next("context_length", limit=4096)
    failure = await failure_of(chat(client).answer(PROMPT, Texts()))
    assert failure.kind == "context_too_long"
    assert len(fake.chat_requests) == 1


async def test_context_too_long_is_recognised_by_message_too(fake, client):
    fake.fail_next("error", status=400, message="the request exceeds the available context size", type="x")
    failure = await failure_of(chat(client).answer(PROMPT))
    assert failure.kind == "context_too_long"


@pytest.mark.parametrize(
    ("kind", "options", "says"),
    [
        ("invalid_api_key", {}, "401"),
        ("quota", {}, "insufficient_quota"),
        ("error", {"status": 403, "message": "Country, region, or territory not supported"}, "403"),
        (
            "error",
            {"status": 404, "code": "model_not_found", "message": "The model `gpt-9` does not exist"},
            "model not found",
        ),
    ],
)
async def test_auth_problems_fail_at_once_and_say_which(fake, client, kind, options, says):
    fake.fail_next(kind, **options)
    failure = await failure_of(chat(client).answer(PROMPT, Texts()))
    assert failure.kind == "auth"
    assert says in failure.message
    assert len(fake.chat_requests) == 1


async def test_a_plain_bad_request_is_not_retried(fake, client):
    fake.fail_next("error", status=400, message="Invalid value for 'n'.", code="invalid_value")
    failure = await failure_of(chat(client).answer(PROMPT))
    assert failure.kind == "upstream"
    assert len(fake.chat_requests) == 1


async def test_what_on_text_raises_reaches_the_caller_unchanged(fake, client):
    class Gone(Exception):
        pass

    async def broken(text: str) -> None:
        raise Gone(text)

    with pytest.raises(Gone):
        await chat(client).answer(PROMPT, broken)
    assert len(fake.chat_requests) == 1


# ---------------------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("invalid_api_key", {}),
        ("error", {"status": 400, "message": f"bad key {KEY} sent as Authorization: Bearer {KEY}"}),
        ("error", {"status": 500, "message": f"upstream saw {KEY}"}),
        ("error", {"status": 429, "message": f"slow down, {KEY}", "code": "rate_limit_exceeded"}),
        ("error", {"status": 401, "message": f"Incorrect API key provided: {KEY}"}),
        ("stream_error", {"message": f"broke while holding {KEY}"}),
    ],
)
async def test_the_key_never_reaches_a_failure_or_a_log_line(fake, client, kind, options):
    fake.fail_always(kind, **options)
    with capture_logs() as logs:
        failure = await failure_of(chat(client).answer(PROMPT, Texts()))
    said = failure.message + repr(logs) + repr(failure.args) + "".join(traceback.format_exception(failure))
    assert len(failure.message) < 300
    assert KEY not in said
    assert "Secret0123" not in said


# ---------------------------------------------------------------------------------------------- images


async def test_a_url_image_is_downloaded_and_referenced_by_its_url(fake, client):
    picture = await images(client).draw("a red fox")
    request = fake.image_requests[-1].body
    assert request == {"model": "dall-e-2", "prompt": "a red fox", "n": 1, "size": "256x256", "response_format": "url"}
    image_id = picture.ref.rsplit("/", 1)[1].removesuffix(".png")
    assert picture.ref.startswith(fake.origin)
    assert picture.data == fake.images[image_id]
    assert picture.model == "dall-e-2"
    assert picture.revised_prompt is None
    download = fake.requests[-1]
    assert download.path.startswith("/images/")
    assert "authorization" not in {name.lower() for name in download.headers}


async def test_a_b64_image_is_decoded_and_referenced_by_its_hash(fake, client):
    picture = await images(client, model="gpt-image-1", size="1024x1024").draw("a red fox")
    assert "response_format" not in fake.image_requests[-1].body
    assert picture.data is not None
    assert picture.data.startswith(b"\x89PNG")
    assert picture.ref == sha256_ref(picture.data)


async def test_b64_can_be_asked_for(fake, client):
    picture = await images(client, response_format="b64_json").draw("a red fox")
    assert fake.image_requests[-1].body["response_format"] == "b64_json"
    assert picture.data is not None
    assert picture.ref == sha256_ref(picture.data)


async def test_a_revised_prompt_is_kept(client):
    picture = await images(client, model="dall-e-3", size="1024x1024").draw("a red fox")
    assert picture.revised_prompt is not None
    assert "a red fox" in picture.revised_prompt


async def test_a_refused_image_prompt_is_content_refused_without_retry(fake, client):
    fake.fail_next("content_policy", endpoint="images")
    failure = await failure_of(images(client).draw("something awful"))
    assert failure.kind == "content_refused"
    assert len(fake.image_requests) == 1


@pytest.mark.parametrize(("kind", "options"), [("rate_limit", {"retry_after": 0.05}), ("malformed", {})])
async def test_transient_image_failures_are_retried(fake, client, kind, options):
    fake.fail_next(kind, endpoint="images", **options)
    picture = await images(client).draw("a red fox")
    assert picture.data
    assert len(fake.image_requests) == 2


async def test_an_image_url_that_has_expired_is_an_upstream_failure(fake, client):
    gone = {"created": 1, "data": [{"url": f"{fake.origin}/images/img-expired.png"}]}
    fake.fail_next("error", endpoint="images", status=200, body=gone)
    failure = await failure_of(images(client).draw("a red fox"))
    assert failure.kind == "upstream"
    assert "404" in failure.message
    assert len(fake.image_requests) == 1


async def test_a_slow_stream_that_keeps_coming_is_not_cut_by_the_retry_budget(fake, client):
    """A local model writing a chunk every 0.1 s for about 2 s, against a 0.8 s budget for all attempts and a 0.5 s
    silence limit: the whole answer arrives in one attempt."""
    answer = " ".join(f"w{i}" for i in range(20))
    fake.set_answer(answer)
    fake.chunk_delay = 0.1
    seen = Texts()
    model = chat(client, timeout=0.5, retry=RetryPolicy(attempts=2, total_seconds=0.8, base_delay=0.01))
    completion = await model.answer(PROMPT, seen)
    assert completion.text == answer
    assert len(fake.chat_requests) == 1


async def test_a_stream_that_goes_silent_past_the_timeout_is_ended(fake, client):
    fake.set_answer("one two three")
    fake.chunk_delay = 1.0
    model = chat(client, timeout=0.3, retry=RetryPolicy(attempts=1, total_seconds=5.0))
    failure = await failure_of(model.answer(PROMPT, Texts()))
    assert failure.kind == "timeout"


async def test_a_refused_connection_is_named_as_such_not_as_a_timeout():
    for transport in ({"http_client": openai.DefaultAioHttpClient()}, {}):
        api = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key=KEY, max_retries=0, **transport)
        try:
            failure = await failure_of(chat(api, retry=RetryPolicy(attempts=1, total_seconds=5.0)).answer(PROMPT))
        finally:
            await api.close()
        assert failure.kind == "upstream"
        assert "refused the connection" in failure.message


async def test_an_image_server_without_the_endpoint_is_unsupported_not_misconfigured_access(fake, client):
    fake.fail_next(
        "error",
        endpoint="images",
        status=404,
        message="Unknown request URL: POST /v1/images/generations.",
        type="invalid_request_error",
        code="unknown_url",
    )
    failure = await failure_of(images(client).draw("a fox"))
    assert failure.kind == "unsupported"


async def test_a_too_long_image_prompt_is_too_long_not_unreachable(fake, client):
    fake.fail_next(
        "error",
        endpoint="images",
        status=400,
        message="'prompt' is too long. Maximum length is 1000 characters.",
        type="invalid_request_error",
        param="prompt",
    )
    failure = await failure_of(images(client).draw("a fox " * 300))
    assert failure.kind == "context_too_long"
