"""Files in the fake Telegram server: injected media with real bytes, getFile, downloads, sendVoice & co.

Driven by the real aiogram client (``Bot.get_file`` / ``Bot.download`` / ``Bot.send_voice``).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BufferedInputFile, Message, ReplyParameters, Update

from tests.doubles import media_samples
from tests.doubles.telegram import FakeTelegram, User
from tests.doubles.test_telegram_server import QuickCloseSession, expect_error

UNAVAILABLE = "Bad Request: wrong file_id or the file is temporarily unavailable"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    client = Bot(tg.token, session=QuickCloseSession(api=TelegramAPIServer.from_base(tg.api_base)))
    yield client
    await client.session.close()


@pytest.fixture
def alice(tg: FakeTelegram) -> User:
    return tg.register_user(tg.new_user("Alice", username="alice"))


def last_message(tg: FakeTelegram) -> Message:
    """The last queued update's message, parsed by aiogram."""
    message = Update.model_validate(tg.updates[-1]).message
    assert message is not None
    return message


async def download(bot: Bot, file_id: str) -> bytes:
    """getFile then GET the file, the way a bot does it."""
    buffer = io.BytesIO()
    await bot.download(file_id, destination=buffer)
    return buffer.getvalue()


async def http_get(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.read()


# --------------------------------------------------------------------------- injected files and downloads


async def test_an_injected_voice_note_is_a_real_ogg_file_the_bot_can_download(
    bot: Bot, tg: FakeTelegram, alice: User
) -> None:
    tg.send_voice(alice, duration=4)
    voice = last_message(tg).voice
    assert voice is not None
    assert (voice.duration, voice.mime_type) == (4, "audio/ogg")

    file = await bot.get_file(voice.file_id)
    assert (file.file_id, file.file_unique_id, file.file_size) == (voice.file_id, voice.file_unique_id, voice.file_size)
    assert file.file_path is not None
    assert file.file_path.startswith("voice/")
    assert file.file_path.endswith(".oga")
    data = await download(bot, voice.file_id)
    assert data.startswith(b"OggS")
    assert len(data) == voice.file_size
    assert media_samples.audio_duration(data) == pytest.approx(4.0)
    assert tg.downloads(voice.file_id) == 1
    assert await download(bot, voice.file_id) == data
    assert tg.downloads(voice.file_id) == 2
    assert tg.file_bytes(voice.file_id) == data


async def test_injected_bytes_are_served_verbatim(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    tg.send_voice(alice, data=b"OggS my own voice note")
    voice = last_message(tg).voice
    tg.send_document(alice, "notes.txt", "text/plain", "read this", data=b"remember the milk")
    document = last_message(tg).document
    assert voice is not None
    assert document is not None
    assert (document.file_name, document.mime_type, document.file_size) == ("notes.txt", "text/plain", 17)
    assert last_message(tg).caption == "read this"
    assert await download(bot, voice.file_id) == b"OggS my own voice note"
    assert await download(bot, document.file_id) == b"remember the milk"
    assert (await bot.get_file(document.file_id)).file_path == tg.file(document.file_id).file_path
    assert tg.file(document.file_id).file_path.endswith(".txt")


async def test_default_documents_audio_and_video_notes_have_plausible_bytes(
    bot: Bot, tg: FakeTelegram, alice: User
) -> None:
    tg.send_document(alice)
    document = last_message(tg).document
    tg.send_audio(alice, duration=5, title="Song", performer="Band")
    audio = last_message(tg).audio
    tg.send_video_note(alice, duration=7, length=360)
    note = last_message(tg).video_note
    assert document is not None
    assert audio is not None
    assert note is not None
    assert (document.file_name, document.mime_type) == ("report.pdf", "application/pdf")
    assert (await download(bot, document.file_id)).startswith(b"%PDF-1.4")
    assert (audio.duration, audio.title, audio.performer, audio.mime_type) == (5, "Song", "Band", "audio/mpeg")
    assert audio.file_name == "track.mp3"
    mp3 = await download(bot, audio.file_id)
    assert media_samples.audio_format(mp3) == "mp3"
    assert media_samples.audio_duration(mp3) == pytest.approx(5.0, abs=0.05)
    assert (note.duration, note.length) == (7, 360)
    mp4 = await download(bot, note.file_id)
    assert media_samples.audio_format(mp4) == "mp4"
    assert media_samples.audio_duration(mp4) == pytest.approx(7.0)
    paths = [tg.file(item.file_id).file_path for item in (document, audio, note)]
    assert [path.split("/")[0] for path in paths] == ["documents", "music", "video_notes"]


async def test_every_photo_size_is_its_own_downloadable_file(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    tg.send_photo(alice, "look", width=3000, height=2000)
    photo = last_message(tg).photo
    assert photo is not None
    assert [(size.width, size.height) for size in photo] == [
        (90, 60),
        (320, 213),
        (800, 533),
        (1280, 853),
        (2560, 1707),
    ]
    assert len({size.file_id for size in photo}) == len({size.file_unique_id for size in photo}) == 5
    for size in photo:
        data = await download(bot, size.file_id)
        assert media_samples.image_format(data) == "jpeg"
        assert media_samples.image_size(data) == (size.width, size.height)
        assert len(data) == size.file_size


async def test_a_photo_with_data_serves_it_as_the_largest_size(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    original = media_samples.jpeg(1000, 500, seed="holiday")
    tg.send_photo(alice, data=original)
    photo = last_message(tg).photo
    assert photo is not None
    assert [(size.width, size.height) for size in photo] == [(90, 45), (320, 160), (800, 400), (1000, 500)]
    assert await download(bot, photo[-1].file_id) == original
    assert media_samples.image_size(await download(bot, photo[0].file_id)) == (90, 45)


async def test_an_album_is_separate_updates_sharing_a_media_group_id(tg: FakeTelegram, alice: User) -> None:
    sent = tg.send_album(alice, [media_samples.jpeg(64, 64, seed=str(n)) for n in range(3)], "our trip")
    messages = [Update.model_validate(update).message for update in tg.updates[-3:]]
    assert [message.message_id for message in messages if message] == [item.message_id for item in sent]
    groups = {message.media_group_id for message in messages if message}
    assert len(groups) == 1
    assert None not in groups
    assert [message.caption for message in messages if message] == ["our trip", None, None]
    solo = tg.send_photo(alice, "alone", media_group_id="42")
    assert solo.content["media_group_id"] == "42"


async def test_injected_media_parse_as_aiogram_messages_in_topics(tg: FakeTelegram, alice: User) -> None:
    forum = tg.new_group(forum=True)
    topic = tg.create_topic(forum, "Media")
    for send in (
        lambda: tg.send_voice(alice, chat=forum, thread=topic, caption="listen"),
        lambda: tg.send_audio(alice, chat=forum, thread=topic),
        lambda: tg.send_video_note(alice, chat=forum, thread=topic),
        lambda: tg.send_document(alice, chat=forum, thread=topic, media_group_id="7"),
    ):
        send()
        message = last_message(tg)
        assert message.message_thread_id == topic
        assert message.voice or message.audio or message.video_note or message.document


# --------------------------------------------------------------------------- getFile refusals


async def test_get_file_refuses_like_the_real_server(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    await expect_error(bot.get_file("not-a-file-id"), "Bad Request: invalid file_id")
    await expect_error(bot.get_file(""), "Bad Request: file_id not specified")
    tg.send_document(alice, "movie.mkv", "video/x-matroska", size=25_000_000)
    big = last_message(tg).document
    assert big is not None
    assert big.file_size == 25_000_000
    await expect_error(bot.get_file(big.file_id), "Bad Request: file is too big")


async def test_an_expired_file_is_temporarily_unavailable(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    tg.send_voice(alice)
    voice = last_message(tg).voice
    assert voice is not None
    url = tg.file_url(voice.file_id)
    assert (await http_get(url))[0] == 200

    tg.expire_file(voice.file_id)
    await expect_error(bot.get_file(voice.file_id), UNAVAILABLE)
    assert (await http_get(url))[0] == 404
    tg.restore_file(voice.file_id)
    assert (await bot.get_file(voice.file_id)).file_id == voice.file_id
    assert tg.downloads(voice.file_id) == 1


async def test_downloads_need_the_token_and_a_known_path(tg: FakeTelegram, alice: User) -> None:
    tg.send_voice(alice)
    stored = tg.file(last_message(tg).voice.file_id)
    assert stored is not None
    good = f"{tg.api_base}/file/bot{tg.token}/{stored.file_path}"
    assert good == tg.file_url(stored.file_id)
    wrong_token = f"{tg.api_base}/file/bot{tg.token.split(':')[0]}:wrong/{stored.file_path}"
    unknown = f"{tg.api_base}/file/bot{tg.token}/voice/file_999.oga"
    for url in (wrong_token, unknown):
        status, body = await http_get(url)
        assert (status, body) == (404, b'{"ok": false, "error_code": 404, "description": "Not Found"}')
    assert tg.downloads(stored.file_id) == 0


# --------------------------------------------------------------------------- sendVoice / sendAudio / sendDocument


async def test_send_voice_uploads_and_stores_the_bots_message(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    question = tg.send_text(alice, "say it")
    speech = media_samples.ogg_opus(2, seed="answer")
    sent = await bot.send_voice(
        alice.id,
        BufferedInputFile(speech, "answer.ogg"),
        caption="<b>spoken</b> answer",
        parse_mode="HTML",
        duration=2,
        reply_parameters=ReplyParameters(message_id=question.message_id),
    )
    assert sent.voice is not None
    assert (sent.voice.duration, sent.voice.mime_type, sent.voice.file_size) == (2, "audio/ogg", len(speech))
    assert sent.caption == "spoken answer"
    assert sent.caption_entities is not None
    assert sent.caption_entities[0].type == "bold"
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.message_id == question.message_id

    [stored] = tg.voices(alice.id)
    assert stored.message_id == sent.message_id
    assert stored.upload is not None
    assert stored.upload.data.startswith(b"OggS")
    assert stored.upload.filename == "answer.ogg"
    assert stored.reply_to is question
    assert await download(bot, sent.voice.file_id) == speech
    assert tg.last_bot_message(alice.id) is stored


async def test_send_voice_by_file_id_url_and_in_a_topic(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    first = await bot.send_voice(alice.id, BufferedInputFile(media_samples.ogg_opus(1), "a.oga"))
    assert first.voice is not None
    again = await bot.send_voice(alice.id, first.voice.file_id, duration=1)
    assert again.voice is not None
    assert again.voice.file_id == first.voice.file_id
    assert again.voice.duration == 1
    by_url = await bot.send_voice(alice.id, "https://example.com/hello.ogg")
    assert by_url.voice is not None
    assert (await download(bot, by_url.voice.file_id)).startswith(b"OggS")

    forum = tg.new_group(forum=True)
    topic = tg.create_topic(forum, "Voice")
    in_topic = await bot.send_voice(forum.id, first.voice.file_id, message_thread_id=topic)
    assert in_topic.message_thread_id == topic
    assert [message.message_id for message in tg.voices(forum.id, thread=topic)] == [in_topic.message_id]


async def test_send_voice_keeps_other_formats_and_tells_their_type(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    sent = await bot.send_voice(alice.id, BufferedInputFile(media_samples.mp3(1), "answer.mp3"))
    assert sent.voice is not None
    assert sent.voice.mime_type == "audio/mpeg"
    assert (await download(bot, sent.voice.file_id)).startswith(b"ID3")


async def test_send_voice_refusals(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    document = await bot.send_document(alice.id, BufferedInputFile(b"text", "a.txt"))
    assert document.document is not None
    await expect_error(
        bot.send_voice(alice.id, document.document.file_id),
        "Bad Request: can't use file of type Document as VoiceNote",
    )
    await expect_error(
        bot.send_voice(alice.id, "no-such-file"), "Bad Request: wrong file identifier/HTTP URL specified"
    )
    await expect_error(
        bot.send_voice(alice.id, BufferedInputFile(b"", "empty.ogg")), "Bad Request: file must be non-empty"
    )
    tg.break_url("https://example.com/gone.ogg")
    await expect_error(
        bot.send_voice(alice.id, "https://example.com/gone.ogg"), "Bad Request: failed to get HTTP URL content"
    )
    forum = tg.new_group(forum=True)
    await expect_error(
        bot.send_voice(forum.id, BufferedInputFile(b"OggS", "a.ogg"), message_thread_id=999),
        "Bad Request: message thread not found",
    )
    await expect_error(
        bot.send_voice(alice.id, BufferedInputFile(b"OggS", "a.ogg"), caption="x" * 1025),
        "Bad Request: message caption is too long",
    )
    status = await tg.call("sendVoice", chat_id=alice.id)
    assert status == {"ok": False, "error_code": 400, "description": "Bad Request: there is no voice in the request"}
    assert tg.voices(alice.id) == []


async def test_send_audio_and_send_document(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    song = await bot.send_audio(
        alice.id, BufferedInputFile(media_samples.mp3(2), "song.mp3"), title="Tune", performer="Me", duration=2
    )
    assert song.audio is not None
    assert (song.audio.title, song.audio.performer, song.audio.file_name) == ("Tune", "Me", "song.mp3")
    assert (song.audio.duration, song.audio.mime_type) == (2, "audio/mpeg")
    report = await bot.send_document(alice.id, BufferedInputFile(media_samples.pdf("Q3"), "q3.pdf"), caption="report")
    assert report.document is not None
    assert (report.document.file_name, report.document.mime_type) == ("q3.pdf", "application/pdf")
    assert report.caption == "report"
    assert (await download(bot, report.document.file_id)).startswith(b"%PDF")
    stored = tg.last_bot_message(alice.id)
    assert stored is not None
    assert stored.upload is not None
    assert stored.upload.filename == "q3.pdf"


async def test_voice_chat_actions_are_accepted(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    assert await bot.send_chat_action(alice.id, "record_voice")
    assert await bot.send_chat_action(alice.id, "upload_voice")
    assert [record.action for record in tg.chat_actions(alice.id)] == ["record_voice", "upload_voice"]


async def test_send_document_takes_up_to_50_mb_and_refuses_more(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    from aiogram.exceptions import TelegramEntityTooLarge

    from tests.doubles.telegram.api_media import MAX_UPLOAD_SIZE

    sent = await bot.send_document(alice.id, BufferedInputFile(b"x" * MAX_UPLOAD_SIZE, "big.jsonl"))
    assert sent.document is not None and sent.document.file_size == MAX_UPLOAD_SIZE
    with pytest.raises(TelegramEntityTooLarge, match="Request Entity Too Large"):
        await bot.send_document(alice.id, BufferedInputFile(b"x" * (MAX_UPLOAD_SIZE + 1), "bigger.jsonl"))
    assert [document.upload.filename for document in tg.documents(alice.id)] == ["big.jsonl"]
