"""The OpenAI adapter's parts on their own: retry policy, error mapping, token counting, settings."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.openai import errors, tokens
from adapters.openai.errors import CallerError, IncompleteAnswer, classify, parse_duration, retry_after, scrub
from adapters.openai.retry import RetryPolicy
from adapters.openai.settings import OpenAISettings, build_models
from adapters.openai.tokenize import ServerTokenizer, tokenize_url
from domain.ports import ModelFailure
from domain.prompt import estimate_tokens
from entrypoints.bootstrap import build_service

# ---------------------------------------------------------------------------------------------- retry policy


class FakeTime:
    """A clock that only moves when the policy sleeps (or an attempt says it took time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(time: FakeTime, **options: Any) -> RetryPolicy:
    return RetryPolicy(**({"random": lambda: 1.0, "sleep": time.sleep, "clock": time.clock} | options))


def test_backoff_is_full_jitter_under_a_doubling_capped_ceiling():
    top = RetryPolicy(base_delay=0.5, max_delay=3.0, random=lambda: 1.0)
    assert [top.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert RetryPolicy(random=lambda: 0.0).backoff(3) == 0.0
    assert RetryPolicy(base_delay=1.0, random=lambda: 0.25).backoff(2) == 0.5


def test_a_policy_needs_an_attempt_and_some_time():
    with pytest.raises(ValueError, match="attempt"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="time"):
        RetryPolicy(total_seconds=0)


async def test_retries_a_retryable_failure_until_the_attempts_run_out():
    time = FakeTime()
    calls: list[float] = []

    async def attempt(left: float) -> str:
        calls.append(left)
        raise IncompleteAnswer("stream ended early")

    with pytest.raises(ModelFailure) as caught:
        await policy(time, attempts=3, total_seconds=60.0).call(attempt, operation="test")
    assert caught.value.kind == "upstream"
    assert "after 3 attempts" in caught.value.message
    assert time.sleeps == [0.5, 1.0]
    assert calls == [60.0, 59.5, 58.5]


async def test_returns_the_first_success():
    time = FakeTime()
    failures = [IncompleteAnswer("cut")]

    async def attempt(left: float) -> str:
        if failures:
            raise failures.pop()
        return "answer"

    assert await policy(time).call(attempt, operation="test") == "answer"
    assert time.sleeps == [0.5]


async def test_a_final_failure_is_not_retried():
    time = FakeTime()
    calls = 0

    async def attempt(left: float) -> str:
        nonlocal calls
        calls += 1
        raise ModelFailure("content_refused", "no")

    with pytest.raises(ModelFailure) as caught:
        await policy(time).call(attempt, operation="test")
    assert (caught.value.kind, calls, time.sleeps) == ("content_refused", 1, [])


async def test_stops_when_the_next_wait_would_pass_the_total_time():
    time = FakeTime()

    async def attempt(left: float) -> str:
        time.now += 1.0  # each attempt takes a second
        raise IncompleteAnswer("cut")

    with pytest.raises(ModelFailure):
        await policy(time, attempts=10, total_seconds=4.0, base_delay=1.0).call(attempt, operation="test")
    assert time.now - 100.0 <= 4.0
    assert time.sleeps == [1.0]  # 1 s attempt, 1 s wait, 1 s attempt, then a 2 s wait would not fit


async def test_shared_deadline_spans_calls():
    time = FakeTime()
    shared = policy(time, total_seconds=10.0)
    deadline = shared.deadline()
    time.now += 10.0

    async def attempt(left: float) -> str:
        return "too late"

    with pytest.raises(ModelFailure) as caught:
        await shared.call(attempt, operation="test", deadline=deadline)
    assert caught.value.kind == "timeout"


async def test_what_a_callback_raises_passes_through():
    async def attempt(left: float) -> str:
        raise CallerError(KeyError("telegram went away"))

    with pytest.raises(KeyError, match="telegram"):
        await RetryPolicy().call(attempt, operation="test")


# ---------------------------------------------------------------------------------------------- errors


def test_retry_after_headers():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after({"retry-after-ms": "250", "retry-after": "1"}) == 0.25
    assert retry_after({"Retry-After": "2"}) == 2.0
    assert retry_after({"retry-after": "Thu, 01 Jan 2026 12:00:30 GMT"}, now) == 30.0
    assert retry_after({"retry-after": "Thu, 01 Jan 2026 11:00:00 GMT"}, now) == 0.0
    assert retry_after({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m30s"}) == 90.0
    assert retry_after({"x-ratelimit-remaining-tokens": "5", "x-ratelimit-reset-tokens": "1m30s"}) is None
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_durations_like_the_rate_limit_headers():
    assert parse_duration("6ms") == pytest.approx(0.006)
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("2h1m") == 7260.0
    assert parse_duration("later") is None
    assert parse_duration("") is None


def test_scrub_removes_keys_tokens_and_headers():
    text = "key sk-proj-abc_DEF-123 in Authorization: Bearer sk-xyz and bearer abc.def and api_key=s3cr3t"
    cleaned = scrub(text)
    for secret in ("abc_DEF", "sk-xyz", "abc.def", "s3cr3t"):
        assert secret not in cleaned
    assert scrub("local key is ollama-local", ["ollama-local"]) == "local key is ***"


@given(
    key=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=6, max_size=60),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
)
def test_a_known_key_never_survives_scrubbing(key, before, after):
    assert key not in scrub(before + key + after, [key])


def _status_error(status: int, body: object, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "https://api.example/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    error_class = {400: openai.BadRequestError, 429: openai.RateLimitError}.get(status, openai.APIStatusError)
    return error_class(f"Error code: {status}", response=response, body=body)


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (_status_error(429, {"code": "rate_limit_exceeded", "message": "slow"}), "rate_limited", True),
        (_status_error(429, {"code": "insufficient_quota", "message": "pay"}), "auth", False),
        (_status_error(400, {"code": "moderation_blocked", "message": "no"}), "content_refused", False),
        (_status_error(400, {"code": None, "message": "rejected by our safety system"}), "content_refused", False),
        (
            _status_error(400, {"message": "This model's maximum context length is 8192 tokens"}),
            "context_too_long",
            False,
        ),
        (_status_error(413, {"message": "prompt is too long"}), "context_too_long", False),
        (_status_error(408, None), "timeout", True),
        (_status_error(409, None), "upstream", True),
        (_status_error(503, "<html>busy</html>"), "upstream", True),
        (_status_error(418, None), "upstream", False),
        (TimeoutError(), "timeout", True),
        (httpx2.ConnectError("refused"), "upstream", True),
        (ValueError("bug"), "upstream", False),
    ],
)
def test_classification(error, kind, retryable):
    verdict = classify(error)
    assert (verdict.kind, verdict.retryable) == (kind, retryable)


def test_rate_limit_verdict_carries_the_wait():
    verdict = classify(_status_error(429, {"message": "slow"}, {"retry-after-ms": "1500"}))
    assert verdict.retry_after == 1.5
    assert verdict.failure().retry_after == 1.5


def test_html_bodies_stay_out_of_messages():
    assert "<" not in classify(_status_error(502, "<!DOCTYPE html><title>502</title>")).message
    assert errors.detail("x" * 500).endswith("…")


# ---------------------------------------------------------------------------------------------- tokens


@pytest.fixture
def offline_tiktoken(monkeypatch, tmp_path):
    """tiktoken with an empty cache and no way to download: a download attempt fails the test."""
    import tiktoken.load
    import tiktoken.registry

    real_read = tiktoken.load.read_file

    def no_network(blobpath: str) -> bytes:
        if blobpath.startswith(("http://", "https://")):
            raise AssertionError(f"tiktoken tried to download {blobpath}")
        return real_read(blobpath)

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    for name in ("cl100k_base", "o200k_base"):
        monkeypatch.delitem(tiktoken.registry.ENCODINGS, name, raising=False)
    return tmp_path


@pytest.mark.parametrize("model", ["llama3.1:8b", "unknown", "text-davinci-003"])
def test_token_counter_falls_back_offline_for_what_no_package_ships(offline_tiktoken, model):
    assert tokens.token_counter(model) is estimate_tokens


@pytest.mark.parametrize("model", ["gpt-3.5-turbo", "gpt-4", "gpt-4o", "gpt-4o-mini"])
def test_openai_models_are_counted_by_the_shipped_encoding_without_a_download(offline_tiktoken, model):
    count = tokens.token_counter(model)
    assert count is not estimate_tokens
    assert count("hello world") == 2
    assert count("1234567890" * 3) == 10  # cl100k: three digits a token; the estimate guesses differently


def test_the_encoding_is_loaded_on_the_first_count_not_before(offline_tiktoken, monkeypatch):
    import tiktoken.registry

    shipped = tokens.SHIPPED_STAND_INS["cl100k_base"]
    monkeypatch.delitem(tiktoken.registry.ENCODINGS, shipped, raising=False)
    count = tokens.token_counter("gpt-4")
    assert shipped not in tiktoken.registry.ENCODINGS  # a bot nobody asked holds no encoding (~40 MiB)
    assert count("hello world") == 2
    assert shipped in tiktoken.registry.ENCODINGS


def test_a_corrupt_cache_file_is_passed_over_for_the_shipped_encoding_and_left_alone(offline_tiktoken):
    blob = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    corrupt = offline_tiktoken / hashlib.sha1(blob.encode()).hexdigest()
    corrupt.write_bytes(b"not an encoding")
    assert tokens.cached_file("cl100k_base") is None
    assert tokens.token_counter("gpt-4")("hello world") == 2
    assert corrupt.read_bytes() == b"not an encoding"


def test_an_intact_cache_file_is_found(offline_tiktoken, monkeypatch):
    content = b"pretend encoding"
    monkeypatch.setitem(tokens.ENCODING_FILES, "toy", ("toy.tiktoken", hashlib.sha256(content).hexdigest()))
    blob = "https://openaipublic.blob.core.windows.net/encodings/toy.tiktoken"
    (offline_tiktoken / hashlib.sha1(blob.encode()).hexdigest()).write_bytes(content)
    assert tokens.cached_file("toy") is not None


def test_the_cache_dir_follows_tiktoken(tmp_path):
    assert tokens.cache_dir({"TIKTOKEN_CACHE_DIR": "/a", "DATA_GYM_CACHE_DIR": "/b"}) == Path("/a")
    assert tokens.cache_dir({"DATA_GYM_CACHE_DIR": "/b"}) == Path("/b")
    assert tokens.cache_dir({"TIKTOKEN_CACHE_DIR": ""}) is None
    default = tokens.cache_dir({})
    assert default is not None
    assert default.name == "data-gym-cache"


def test_a_loaded_encoding_is_used(offline_tiktoken, monkeypatch):
    import tiktoken
    import tiktoken.registry

    bytes_only = tiktoken.Encoding(
        name="cl100k_base", pat_str=r"\S+|\s+", mergeable_ranks={bytes([b]): b for b in range(256)}, special_tokens={}
    )
    monkeypatch.setitem(tiktoken.registry.ENCODINGS, "cl100k_base", bytes_only)
    count = tokens.token_counter("gpt-4")
    assert count is not estimate_tokens
    assert count("hello") == 5


# ---------------------------------------------------------------------------------------------- settings

SECRET = "sk-live-VerySecret987654321"


def test_settings_defaults():
    settings = OpenAISettings.from_env({"OPENAI_API_KEY": SECRET})
    assert settings == OpenAISettings(api_key=SECRET)
    assert (settings.chat_model, settings.image_model, settings.image_size) == (
        "gpt-3.5-turbo",
        "dall-e-2",
        "1024x1024",
    )
    assert (settings.max_tokens, settings.timeout, settings.retries, settings.retry_seconds) == (1024, 60.0, 4, 90.0)
    assert settings.stream == "drafts"
    assert settings.base_url is None


def test_settings_from_every_variable():
    settings = OpenAISettings.from_env(
        {
            "OPENAI_SECRET_KEY": "ollama",
            "OPENAI_BASE_URL": "http://localhost:11434/v1",
            "CONVO_CHAT_MODEL": "llama3.1:8b",
            "CONVO_IMAGE_MODEL": "gpt-image-1",
            "CONVO_IMAGE_SIZE": "1536x1024",
            "CONVO_MAX_TOKENS": "none",
            "CONVO_MODEL_TIMEOUT": "12.5",
            "CONVO_MODEL_RETRIES": "2",
            "CONVO_MODEL_RETRY_SECONDS": "30",
            "CONVO_STREAM": "off",
        }
    )
    assert settings == OpenAISettings(
        api_key="ollama",
        base_url="http://localhost:11434/v1",
        chat_model="llama3.1:8b",
        image_model="gpt-image-1",
        image_size="1536x1024",
        max_tokens=None,
        timeout=12.5,
        retries=2,
        retry_seconds=30.0,
        stream="off",
    )
    assert settings.retry_policy() == RetryPolicy(attempts=2, total_seconds=30.0)


def test_openai_api_key_wins_and_empty_values_count_as_unset():
    settings = OpenAISettings.from_env({"OPENAI_API_KEY": " a-key ", "OPENAI_SECRET_KEY": "b", "CONVO_STREAM": ""})
    assert settings.api_key.get_secret_value() == "a-key"
    assert settings.stream == "drafts"


@pytest.mark.parametrize("env", [{}, {"OPENAI_API_KEY": "  "}, {"OPENAI_SECRET_KEY": ""}])
def test_a_missing_key_is_one_clear_line(env):
    with pytest.raises(ValueError, match="OPENAI_API_KEY") as caught:
        OpenAISettings.from_env(env)
    assert "\n" not in str(caught.value)
    assert "any non-empty value" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONVO_MAX_TOKENS", "lots"),
        ("CONVO_MAX_TOKENS", "0"),
        ("CONVO_MODEL_TIMEOUT", "-1"),
        ("CONVO_MODEL_TIMEOUT", "nan"),
        ("CONVO_MODEL_RETRIES", "2.5"),
        ("CONVO_MODEL_RETRY_SECONDS", "inf"),
        ("CONVO_STREAM", "maybe"),
        ("CONVO_IMAGE_SIZE", "big"),
        ("OPENAI_BASE_URL", "localhost:11434"),
    ],
)
def test_a_bad_value_names_its_variable_and_never_the_key(name, value):
    with pytest.raises(ValueError, match=name) as caught:
        OpenAISettings.from_env({"OPENAI_API_KEY": SECRET, name: value})
    assert SECRET not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_key_with_a_line_break_is_refused_without_showing_it():
    with pytest.raises(ValueError, match="OPENAI_API_KEY") as caught:
        OpenAISettings.from_env({"OPENAI_API_KEY": "sk-abc def"})
    assert "abc" not in str(caught.value)


def test_repr_never_shows_the_key():
    settings = OpenAISettings.from_env({"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": "https://u:pw@proxy.example/v1"})
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert "pw" not in repr(settings)
    assert "proxy.example" in repr(settings)


async def test_build_models_shares_one_client_without_its_own_retries():
    settings = OpenAISettings.from_env(
        {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "CONVO_MODEL_TIMEOUT": "7"}
    )
    chat, images = build_models(settings)
    assert chat._client is images._client
    client = chat._client
    assert client.max_retries == 0
    assert str(client.base_url) == "http://127.0.0.1:9/v1/"
    assert client.timeout == 7.0
    assert (chat.name, images.name) == ("gpt-3.5-turbo", "dall-e-2")
    await chat.close()


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/tokenize"),
        ("http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/tokenize"),
        ("http://gpu:8000", "http://gpu:8000/tokenize"),
    ],
)
def test_the_tokenizer_sits_at_the_servers_root(base, url):
    assert tokenize_url(base) == url


@pytest.mark.parametrize(
    ("env", "metered"),
    [
        ({"OPENAI_BASE_URL": "http://127.0.0.1:8080/v1", "CONVO_CHAT_MODEL": "llama3.1:8b"}, True),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:8080/v1", "CONVO_CHAT_MODEL": "gpt-4o"}, False),
        ({"CONVO_CHAT_MODEL": "llama3.1:8b"}, False),
    ],
)
async def test_only_a_model_counted_by_estimate_on_a_server_of_ones_own_is_metered(tmp_path, env, metered):
    env = {"OPENAI_API_KEY": "sk-test", "CONVO_STORE": f"sqlite:///{tmp_path}/convo.db"} | env
    service = await build_service(env)
    try:
        assert isinstance(service.meter, ServerTokenizer) is metered
    finally:
        await service.close()
