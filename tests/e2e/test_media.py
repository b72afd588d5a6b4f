"""Voice notes, photos and documents in, spoken answers out: the real `convo bot` against the local Telegram and
OpenAI servers, which serve files through getFile and the audio endpoints as the real ones do."""

from __future__ import annotations

import hashlib

import pytest

from tests.doubles import media_samples
from tests.e2e.harness import (
    assert_log_clean,
    bot_env,
    event_types,
    replay_json,
    replay_list,
    run_cli,
    running_bot,
    texts,
    wait_for_text,
)

pytestmark = pytest.mark.e2e


def sqlite_env(tg, ai, tmp_path, **extra: str) -> dict[str, str]:
    return bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", **extra)


def events_of(document: dict, kind: str) -> list[dict]:
    return [event["data"] for event in document["events"] if event["type"] == kind]


async def test_a_voice_note_is_transcribed_once_shown_quoted_and_answered(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    ai.set_transcript("what is the capital of France")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        note = tg.send_voice(alice, duration=4, data=media_samples.ogg_opus(4))
        await wait_for_text(tg, alice.id, "echo: what is the capital of France")
        assert "🎤 “what is the capital of France”" in texts(tg, alice.id)
        assert len(ai.transcriptions) == 1 and ai.transcriptions[0].model == "gpt-4o-mini-transcribe"
        assert ai.chat_requests[-1].messages[-1]["content"] == "what is the capital of France"
        original = next(update for update in tg.updates if update["update_id"] == note.update_id)
        tg.push_update(dict(original))  # Telegram sends the same update again
        tg.send_text(alice, "and of Spain?")
        await wait_for_text(tg, alice.id, "echo: and of Spain?")
        assert len(ai.transcriptions) == 1, "a redelivered voice note is never transcribed again"
        assert texts(tg, alice.id).count("echo: what is the capital of France") == 1
        assert_log_clean(bot)
    document = await replay_json(env, tmp_path, str(alice.id))
    [heard] = events_of(document, "VoiceTranscribed")
    assert heard["text"] == "what is the capital of France" and heard["duration_s"] == 4
    assert heard["model"] == "gpt-4o-mini-transcribe" and heard["kind"] == "voice"
    assert "what is the capital of France" in [q["text"] for q in events_of(document, "QuestionAsked")]


async def test_the_same_voice_file_forwarded_again_is_answered_without_a_second_transcription(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    ai.set_transcript("tell me a joke")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        first = tg.send_voice(alice, duration=2)
        await wait_for_text(tg, alice.id, "echo: tell me a joke")
        voice = first.content["voice"]
        tg.send_content(alice, {"voice": voice})
        await tg.wait_for(lambda: texts(tg, alice.id).count("echo: tell me a joke") == 2, timeout=15)
        assert len(ai.transcriptions) == 1
        assert tg.downloads(voice["file_id"]) == 1
        assert_log_clean(bot)
    types = await event_types(env, tmp_path, str(alice.id))
    assert types.count("VoiceTranscribed") == 1 and types.count("AnswerGiven") == 2


async def test_in_image_mode_a_voice_note_is_a_picture_prompt(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    ai.set_transcript("a red fox in the snow")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(alice, "image")
        await wait_for_text(tg, alice.id, "Image mode")
        tg.send_voice(alice, duration=2)
        await tg.wait_for(lambda: any("photo" in m.content for m in tg.bot_messages(alice.id)), timeout=15)
        assert ai.image_requests[-1].body["prompt"] == "a red fox in the snow"
        assert_log_clean(bot)
    types = await event_types(env, tmp_path, str(alice.id))
    assert types[-3:-1] == ["VoiceTranscribed", "ImageRequested"] or "ImageRequested" in types


@pytest.mark.parametrize(
    ("fault", "reply"),
    [
        ("server_error", "I couldn't transcribe that voice message"),
        ("not_found", "has no transcription endpoint"),
    ],
)
async def test_a_failed_transcription_gets_a_clear_reply_and_a_failure_event_and_nothing_reaches_the_chat_model(
    tg, ai, tmp_path, fault, reply
):
    alice = tg.new_user("Alice")
    ai.fail_always(fault, endpoint="transcriptions")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        tg.send_voice(alice, duration=2)
        await wait_for_text(tg, alice.id, reply)
        assert ai.chat_requests == []
        assert_log_clean(bot)
    document = await replay_json(env, tmp_path, str(alice.id))
    [failed] = events_of(document, "TranscriptionFailed")
    assert failed["kind"] == ("upstream" if fault == "server_error" else "unsupported")
    assert events_of(document, "QuestionAsked") == []


async def test_a_voice_note_over_20_mb_is_refused_with_the_limit_without_downloading_it(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        note = tg.send_voice(alice, duration=600, size=25_000_000)
        await wait_for_text(tg, alice.id, "at most 20 MB")
        assert tg.downloads(note.content["voice"]["file_id"]) == 0
        assert ai.transcriptions == []
        assert_log_clean(bot)


async def test_a_photo_question_sends_the_picture_as_an_image_part_and_the_log_keeps_only_its_hash(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    picture = media_samples.jpeg(1280, 960, seed="fox")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        sent = tg.send_photo(alice, "what animal is this?", width=1280, height=960, data=picture)
        await wait_for_text(tg, alice.id, "echo: what animal is this? [1 image(s)]")
        [image] = ai.chat_requests[-1].images
        assert image.data == picture
        tg.send_text(alice, "what colour is it?")
        await wait_for_text(tg, alice.id, "echo: what colour is it?")
        assert len(ai.chat_requests[-1].images) == 1, "the newest turn with a picture keeps sending it"
        assert_log_clean(bot)
    largest = max(sent.content["photo"], key=lambda size: size["width"])
    document = await replay_json(env, tmp_path, str(alice.id))
    [photo] = events_of(document, "QuestionAsked")[0]["photos"]
    assert photo["sha256"] == hashlib.sha256(picture).hexdigest()
    assert photo["file_unique_id"] == largest["file_unique_id"] and photo["width"] == 1280
    assert "data" not in photo and picture.hex() not in str(document)
    asked = document["prompts"][0]["messages"][-1]
    assert asked["images"][0]["sha256"] == photo["sha256"]


async def test_the_photo_size_sent_is_the_largest_within_the_pixel_cap(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    env = sqlite_env(tg, ai, tmp_path, CONVO_VISION_MAX_SIDE="900")
    async with running_bot(env, tmp_path) as bot:
        sent = tg.send_photo(alice, width=2560, height=1920)
        await wait_for_text(tg, alice.id, "What is in this picture? [1 image(s)]")
        assert_log_clean(bot)
    sizes = sent.content["photo"]
    within = max((s for s in sizes if max(s["width"], s["height"]) <= 900), key=lambda s: s["width"])
    document = await replay_json(env, tmp_path, str(alice.id))
    [photo] = events_of(document, "QuestionAsked")[0]["photos"]
    assert photo["file_id"] == within["file_id"]


async def test_with_vision_off_a_photo_is_declined_and_nothing_is_recorded(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    env = sqlite_env(tg, ai, tmp_path, CONVO_VISION="off")
    async with running_bot(env, tmp_path) as bot:
        tg.send_photo(alice, "what is this?")
        await wait_for_text(tg, alice.id, "Pictures are turned off")
        assert ai.chat_requests == []
        assert_log_clean(bot)
    assert str(alice.id) not in await replay_list(env, tmp_path)


async def test_a_model_that_refuses_pictures_is_remembered_and_the_user_told_clearly(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    ai.refuse_images("gpt-3.5-turbo")
    env = sqlite_env(tg, ai, tmp_path, CONVO_CHAT_MODEL="gpt-3.5-turbo")
    async with running_bot(env, tmp_path) as bot:
        tg.send_photo(alice, "what is this?")
        await wait_for_text(tg, alice.id, "can't see pictures")
        calls = len(ai.chat_requests)
        tg.send_photo(alice, "and this?")
        await wait_for_text(tg, alice.id, "The model gpt-3.5-turbo can't see pictures")
        assert len(ai.chat_requests) == calls, "a model known to refuse pictures is not asked again"
        tg.send_text(alice, "plain text still works")
        await wait_for_text(tg, alice.id, "echo: plain text still works")
        assert_log_clean(bot)
    document = await replay_json(env, tmp_path, str(alice.id))
    assert [f["kind"] for f in events_of(document, "AnswerFailed")] == ["no_vision"]


async def test_a_pdfs_text_reaches_the_prompt_and_replay_shows_it(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    env = sqlite_env(tg, ai, tmp_path)
    pdf = media_samples.pdf("Quarterly revenue grew by 12 percent")
    async with running_bot(env, tmp_path) as bot:
        tg.send_document(alice, "report.pdf", "application/pdf", "what grew?", data=pdf)
        await wait_for_text(tg, alice.id, "echo:")
        sent = ai.chat_requests[-1].messages[-1]["content"]
        assert "Quarterly revenue grew by 12 percent" in sent and sent.endswith("what grew?")
        assert_log_clean(bot)
    document = await replay_json(env, tmp_path, str(alice.id))
    [file] = events_of(document, "QuestionAsked")[0]["files"]
    assert file["name"] == "report.pdf" and file["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert "Quarterly revenue grew by 12 percent" in document["prompts"][0]["messages"][-1]["content"]


async def test_a_text_file_over_the_budget_is_cut_with_a_visible_note(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    env = sqlite_env(tg, ai, tmp_path, CONVO_PROMPT_BUDGET="400")
    text = "".join(f"line {n}: the quick brown fox jumps over the lazy dog\n" for n in range(400))
    async with running_bot(env, tmp_path) as bot:
        tg.send_document(alice, "notes.txt", "text/plain", "summarise", data=text.encode())
        await wait_for_text(tg, alice.id, "fits this chat's prompt budget of 400 tokens")
        await wait_for_text(tg, alice.id, "echo:")
        sent = ai.chat_requests[-1].messages[-1]["content"]
        assert "line 0:" in sent and "line 399:" not in sent and "were cut to fit" in sent
        assert_log_clean(bot)
    document = await replay_json(env, tmp_path, str(alice.id))
    [file] = events_of(document, "QuestionAsked")[0]["files"]
    assert file["dropped_chars"] > 0 and len(file["text"]) + file["dropped_chars"] == len(text.rstrip())


async def test_a_file_the_bot_cannot_read_gets_a_reply_naming_what_it_reads(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        tg.send_document(alice, "archive.zip", "application/zip", data=b"PK\x03\x04" + bytes(200))
        await wait_for_text(tg, alice.id, "I read text files (.txt, .md, .csv, .json, source code), PDFs")
        assert ai.chat_requests == []
        assert_log_clean(bot)


async def test_voice_on_sends_each_answer_as_an_ogg_voice_note_too_and_records_it(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    env = sqlite_env(tg, ai, tmp_path, CONVO_SPEECH_VOICE="nova")
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(alice, "voice", "on")
        await wait_for_text(tg, alice.id, "also send each answer here as a voice message")
        tg.send_text(alice, "say hello")
        await wait_for_text(tg, alice.id, "echo: say hello")
        await tg.wait_for(lambda: tg.voices(alice.id), timeout=15)
        [voice] = tg.voices(alice.id)
        assert voice.upload is not None and voice.upload.data.startswith(b"OggS")
        [speech] = ai.speeches
        assert speech.input == "echo: say hello" and speech.voice == "nova" and speech.response_format == "opus"
        tg.send_command(alice, "voice", "off")
        await wait_for_text(tg, alice.id, "text only")
        tg.send_text(alice, "quietly")
        await wait_for_text(tg, alice.id, "echo: quietly")
        assert len(tg.voices(alice.id)) == 1
        assert_log_clean(bot)
    types = await event_types(env, tmp_path, str(alice.id))
    assert types.count("AnswerSpoken") == 1 and types.count("VoiceRepliesSelected") == 2


async def test_forget_erases_voice_photo_and_file_events(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    ai.set_transcript("remember this")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        tg.send_voice(alice, duration=2)
        await wait_for_text(tg, alice.id, "echo: remember this")
        tg.send_photo(alice, "and this")
        await wait_for_text(tg, alice.id, "echo: and this")
        tg.send_document(alice, "a.txt", "text/plain", "and this file", data=b"secret notes")
        await wait_for_text(tg, alice.id, "echo:")
        tg.send_command(alice, "forget")
        confirm = await tg.wait_for(
            lambda: next((m for m in tg.bot_messages(alice.id) if "Erase everything" in (m.text or "")), None)
        )
        buttons = [button for row in confirm.reply_markup["inline_keyboard"] for button in row]
        tg.press_button(alice, confirm, buttons[0]["callback_data"])
        await tg.wait_for(lambda: (tg.message(alice.id, confirm.message_id).text or "").startswith("Erased"))
        assert_log_clean(bot)
    assert str(alice.id) not in await replay_list(env, tmp_path)
    dump = await run_cli(env, tmp_path, "replay", str(alice.id), "--json")
    assert "remember this" not in dump.stdout and "secret notes" not in dump.stdout


async def test_an_albums_photos_become_one_question_with_every_picture(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    pictures = [media_samples.jpeg(1280, 960, seed=f"album {n}") for n in range(3)]
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        tg.send_album(alice, pictures, caption="which is the odd one out?")
        await wait_for_text(tg, alice.id, "echo: which is the odd one out? [3 image(s)]")
        tg.send_text(alice, "thanks")
        await wait_for_text(tg, alice.id, "echo: thanks")
        assert [image.data for image in ai.chat_requests[0].images] == pictures
        assert len(ai.chat_requests) == 2, "the album's later photos ask nothing of their own"
        assert_log_clean(bot)
    document = await replay_json(env, tmp_path, str(alice.id))
    [album, _] = events_of(document, "QuestionAsked")
    assert [p["sha256"] for p in album["photos"]] == [hashlib.sha256(p).hexdigest() for p in pictures]


async def test_a_picture_sent_as_a_file_is_asked_about_as_a_photo(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    picture = media_samples.jpeg(640, 480, seed="screenshot")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        tg.send_document(alice, "screenshot.jpg", "image/jpeg", "what does it say?", data=picture)
        await wait_for_text(tg, alice.id, "echo: what does it say? [1 image(s)]")
        assert [image.data for image in ai.chat_requests[-1].images] == [picture]
        assert_log_clean(bot)


async def test_with_vision_off_an_album_is_declined_once(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    env = sqlite_env(tg, ai, tmp_path, CONVO_VISION="off")
    async with running_bot(env, tmp_path) as bot:
        tg.send_album(alice, 3, caption="look")
        await wait_for_text(tg, alice.id, "Pictures are turned off")
        tg.send_text(alice, "ok")
        await wait_for_text(tg, alice.id, "echo: ok")
        assert sum("Pictures are turned off" in text for text in texts(tg, alice.id)) == 1
        assert_log_clean(bot)


async def test_after_a_restart_the_photo_is_fetched_again_and_a_file_telegram_lost_leaves_the_text(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    picture = media_samples.jpeg(1280, 960, seed="kept")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path):
        sent = tg.send_photo(alice, "what is it?", data=picture)
        await wait_for_text(tg, alice.id, "echo: what is it? [1 image(s)]")
    largest = max(sent.content["photo"], key=lambda size: size["width"])["file_id"]
    assert tg.downloads(largest) == 1
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "bigger?")
        await wait_for_text(tg, alice.id, "echo: bigger? [1 image(s)]")
        assert tg.downloads(largest) == 2, "a new process fetches the picture again through getFile"
        assert [image.data for image in ai.chat_requests[-1].images] == [picture]
        assert_log_clean(bot)
    tg.expire_file(largest)
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "and now?")
        await wait_for_text(tg, alice.id, "echo: and now?")
        assert ai.chat_requests[-1].images == []
        gaps = [line for line in bot.log_lines() if line.get("event") == "photo_gone"]
        assert gaps and gaps[0]["file_unique_id"]


async def test_in_a_group_a_photo_captioned_to_the_bot_is_asked_without_the_mention(tg, ai, tmp_path):
    member = tg.new_user("Mia")
    group = tg.new_group("Club")
    env = sqlite_env(tg, ai, tmp_path)
    async with running_bot(env, tmp_path) as bot:
        tg.send_photo(member, "what bird is this?", group)  # not addressed: ignored
        tg.send_photo(member, f"@{tg.state.bot_user.username} what bird is this?", group)
        await wait_for_text(tg, group.id, "echo: Mia: what bird is this? [1 image(s)]")
        assert len(ai.chat_requests) == 1
        assert_log_clean(bot)
