"""Properties of the ledger: it is exactly billed usage times price, in decimals; folding any slices of the log
gives the totals of the whole; re-pricing changes only the prices; each usage kind is counted."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from domain.events import AnswerFailed, AnswerGiven, ImageGenerated, RecordedEvent
from domain.prices import BUILT_IN_CHAT, AudioPrice, ChatPrice, ImagePrice, PriceTable
from domain.usage import Billed, LedgerKey, billed_by, charge_of, cost, fold_ledger, spent, unpriced
from tests.strategies import streams

AT = datetime(2026, 11, 26, 23, 59, tzinfo=UTC)
amounts = st.decimals(min_value=0, max_value=100, places=6, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=10**7)


def answer(model: str, prompt: int, completion: int, cached: int, asker: int | None = 7) -> RecordedEvent:
    event = AnswerGiven(
        text="a",
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        latency_ms=1,
        question_version=2,
        cached_tokens=cached,
        asker_id=asker,
    )
    return RecordedEvent(stream="-100:5", version=3, recorded_at=AT, causation_id="c", event=event)


@given(amounts, amounts, amounts, counts, counts, counts)
def test_the_cost_of_an_answer_is_exactly_its_billed_tokens_times_the_prices(
    input_, cached_input, output, prompt, completion, cached
):
    cached = min(cached, prompt)
    table = PriceTable(chat={"m": ChatPrice(input_, output, cached_input)})
    million = Decimal(1_000_000)
    expected = ((prompt - cached) * input_ + cached * cached_input + completion * output) / million
    charged = cost(billed_by(answer("m", prompt, completion, cached).event), table)
    assert charged == expected
    assert isinstance(charged, Decimal)


@given(counts, counts)
def test_a_dated_model_takes_its_familys_price_and_an_unknown_one_costs_nothing(prompt, completion):
    family = cost(billed_by(answer("gpt-4o-mini", prompt, completion, 0).event), PriceTable())
    dated = cost(billed_by(answer("gpt-4o-mini-2024-07-18", prompt, completion, 0).event), PriceTable())
    assert family == dated
    local = billed_by(answer("llama3:8b", prompt, completion, 0).event)
    assert cost(local, PriceTable()) == 0
    assert unpriced(local, PriceTable()) == ({"llama3:8b"} if prompt or completion else set())


def test_pictures_are_priced_by_size_and_quality():
    def picture(size: str, quality: str) -> ImageGenerated:
        return ImageGenerated(
            image_ref="https://x", model="dall-e-3", revised_prompt=None, request_version=1, size=size, quality=quality
        )

    assert cost(billed_by(picture("1024x1024", "standard")), PriceTable()) == Decimal("0.040")
    assert cost(billed_by(picture("1792x1024", "hd")), PriceTable()) == Decimal("0.120")
    assert billed_by(picture("1024x1024", "hd")) == (Billed("dall-e-3", "image:hd:1024x1024", 1),)


def test_a_failed_call_the_server_billed_counts_and_one_it_did_not_bill_does_not():
    billed = AnswerFailed(
        kind="content_refused", message="m", question_version=2, model="gpt-4o", prompt_tokens=1000, cached_tokens=0
    )
    free = AnswerFailed(kind="timeout", message="m", question_version=2)
    assert cost(billed_by(billed), PriceTable()) == Decimal("0.0025")
    assert billed_by(free) == ()


@given(streams(max_steps=40), st.data())
def test_folding_the_log_in_any_slices_gives_the_totals_of_the_whole(stream, data):
    """As a projection catching up page by page from its checkpoint does."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    ledger: dict[LedgerKey, int] = {}
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        ledger = fold_ledger(stream[start:end], chat_of=lambda s: s.split(":")[0], ledger=ledger)
    assert ledger == fold_ledger(stream, chat_of=lambda s: s.split(":")[0])


@given(streams(max_steps=40))
def test_every_billed_unit_reaches_the_ledger_for_the_asker_the_chat_and_the_total(stream):
    ledger = fold_ledger(stream, chat_of=str)
    billed = [line for recorded in stream if (charge := charge_of(recorded)) for line in charge.billed]
    for scope in ("chat", "total"):
        month = {k: q for k, q in ledger.items() if k.scope == scope and k.period == "month"}
        assert sum(month.values()) == sum(line.quantity for line in billed)
        assert {(k.model, k.unit) for k in month} == {(line.model, line.unit) for line in billed}
    asked = [c for recorded in stream if (c := charge_of(recorded)) and c.user_id is not None]
    users = {k for k in ledger if k.scope == "user" and k.period == "day"}
    assert sum(ledger[k] for k in users) == sum(line.quantity for c in asked for line in c.billed)


def _doubled_audio(price: AudioPrice) -> AudioPrice:
    minute, chars = price.per_minute, price.per_million_chars
    return AudioPrice(None if minute is None else minute * 2, None if chars is None else chars * 2)


@given(streams(max_steps=40), amounts, amounts)
def test_repricing_changes_the_amounts_only_through_the_prices(stream, input_, output):
    """Another table prices the same ledger (nothing is rewritten): a model priced at zero costs nothing, and
    doubling every price doubles every amount."""
    ledger = fold_ledger(stream, chat_of=str)
    before = dict(ledger)
    base = PriceTable(chat={**BUILT_IN_CHAT, "gpt-test": ChatPrice(input_, output)})
    doubled = PriceTable(
        chat={
            name: ChatPrice(p.input * 2, p.output * 2, None if p.cached_input is None else p.cached_input * 2)
            for name, p in base.chat.items()
        },
        images={
            name: ImagePrice({size: price * 2 for size, price in p.by_size.items()}) for name, p in base.images.items()
        },
        audio={name: _doubled_audio(p) for name, p in base.audio.items()},
    )
    months = {(k.scope, k.holder, k.when) for k in ledger if k.period == "month"}
    for scope, holder, when in months:
        assert spent(ledger, doubled, scope, holder, "month", when) == 2 * spent(
            ledger, base, scope, holder, "month", when
        )
    assert all(spent(ledger, PriceTable({}, {}, {}), s, h, "month", w) == 0 for s, h, w in months)
    assert ledger == before
