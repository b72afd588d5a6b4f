"""A voice note and a SIGKILL: once its transcript is recorded, no restart or redelivery transcribes it again.

The bot is killed after the transcript and the question are recorded, while the chat model hangs, with every
getUpdates after the one that handed the note out failing (502), so the restarted bot is given the same update
again as well as finding the question pending. The note is answered once, and transcribed once.
"""

from __future__ import annotations

import signal

import pytest

from tests.e2e.harness import assert_log_clean, bot_env, event_types, running_bot, texts, wait_for_text
from tests.reliability.test_faults import (
    hold_getupdates_confirmations,
    long_poll_waiting,
    raw_events,
    release_getupdates,
    until,
)

pytestmark = pytest.mark.e2e


async def test_sigkill_after_the_transcript_is_recorded_never_transcribes_the_note_again(tg, ai, tmp_path):
    url = f"sqlite:///{tmp_path}/convo.db"
    env = bot_env(tg, ai, url, CONVO_STREAM="false")
    alice = tg.new_user("Alice")
    ai.set_transcript("will you survive this")
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        hold_getupdates_confirmations(tg)
        ai.fail_always("hang")  # the chat model hangs (the transcription endpoint does not)
        note = tg.send_voice(alice, duration=3)

        async def asked() -> list:
            events = await raw_events(url, str(alice.id))
            return events if any(e["type"] == "QuestionAsked" for e in events) else []

        await until(asked, "the transcript and the question to be recorded")
        assert note.update_id in [u["update_id"] for u in tg.pending_updates]
        assert await bot.stop(signal.SIGKILL, timeout=10) == -signal.SIGKILL
    ai.clear_faults()
    release_getupdates(tg)
    tg.state.failures.clear()
    assert len(ai.transcriptions) == 1
    async with running_bot(env, tmp_path) as bot:
        await wait_for_text(tg, alice.id, "echo: will you survive this", timeout=30)
        await tg.wait_until_consumed(timeout=15)
        assert len(ai.transcriptions) == 1
        assert texts(tg, alice.id).count("echo: will you survive this") == 1
        assert_log_clean(bot)
    types = await event_types(env, tmp_path, str(alice.id))
    assert types.count("VoiceTranscribed") == 1 and types.count("QuestionAsked") == 1
    assert types.count("AnswerGiven") == 1
