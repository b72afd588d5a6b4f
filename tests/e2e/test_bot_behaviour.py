"""What users see for long answers, non-text messages, strangers, /forget and groups (a real `convo bot` process)."""

from __future__ import annotations

import itertools

from adapters.telegram import replies
from tests.doubles.telegram import utf16_len
from tests.e2e.harness import (
    assert_log_clean,
    bot_env,
    event_types,
    replay_list,
    run_cli,
    running_bot,
    texts,
    wait_for_text,
)

LIMIT = 4096


def long_markdown() -> tuple[str, list[str]]:
    """About 9000 characters of Markdown (with non-BMP emoji, a code block and hostile HTML); the paragraph markers."""
    markers = [f"PARA{index:03d}" for index in range(40)]
    paragraphs = [
        f"{marker} **bold** and _italic_ words 😀 with an emoji that counts twice in UTF-16, "
        + "and some filler text so the paragraph is long enough to matter for splitting. " * 2
        for marker in markers
    ]
    lines = [f"print('CODELINE{n:02d}', {n} < {n + 1} and {n} > -1)" for n in range(30)]
    code = "```python\n" + "\n".join(lines) + "\n```"
    hostile = "HOSTILE a < b && c > d, then <script>alert(1)</script> and an unbalanced **bold that never closes"
    text = "\n\n".join([*paragraphs[:20], code, hostile, *paragraphs[20:]])
    assert len(text) > 9000
    return text, markers


async def test_a_long_answer_arrives_whole_in_parts_within_the_limit(tg, ai, tmp_path):
    answer, markers = long_markdown()
    ai.set_answer(answer)
    ai.stream_chunk_tokens = 200
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_MAX_TOKENS="16000")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "Tell me everything")
        await wait_for_text(tg, alice.id, markers[-1], timeout=30)
        await tg.wait_for(lambda: not any(text.endswith("▌") for text in texts(tg, alice.id)), timeout=15)
        assert_log_clean(bot)
    sent = texts(tg, alice.id)
    assert len(sent) >= 3, [len(text) for text in sent]
    assert all(0 < utf16_len(text) <= LIMIT for text in sent), [utf16_len(text) for text in sent]
    whole = "\n".join(sent)
    positions = [whole.find(marker) for marker in markers]
    assert -1 not in positions, [m for m, p in zip(markers, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    assert all(whole.count(marker) == 1 for marker in markers)
    assert all(f"CODELINE{n:02d}" in whole for n in range(30))
    assert whole.count("😀") == answer.count("😀")
    assert "a < b && c > d" in whole
    assert "<script>alert(1)</script>" in whole
    assert "bold that never closes" in whole
    assert (await event_types(env, tmp_path, str(alice.id)))[-1] == "AnswerGiven"


async def test_what_the_bot_cannot_read_edits_unknown_commands_and_other_bots(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_sticker(alice)
        tg.send_location(alice)
        tg.send_contact(alice)
        tg.send_poll(alice)
        tg.send_content(
            alice, {"video": {"file_id": "v", "file_unique_id": "v", "width": 1, "height": 1, "duration": 1}}
        )
        await tg.wait_for_messages(alice.id, 5, timeout=20)
        assert texts(tg, alice.id) == [replies.NOT_TEXT] * 5
        tg.send_command(alice, "start@otherbot")
        tg.send_command(alice, "foo")
        await tg.wait_for_messages(alice.id, 6, timeout=15)
        assert texts(tg, alice.id)[5] == replies.UNKNOWN_COMMAND.format(command="/foo")
        await tg.wait_until_consumed(timeout=10)
        assert len(tg.bot_messages(alice.id)) == 6  # /start@otherbot got nothing
        assert await replay_list(env, tmp_path) == []
        assert ai.chat_requests == []

        question = tg.send_text(alice, "What is 2+2?")
        await wait_for_text(tg, alice.id, "echo: What is 2+2?")
        tg.send_text(alice, "And 5+5?")
        await wait_for_text(tg, alice.id, "echo: And 5+5?")
        tg.edit_message(alice, question, "What is 3+3?")  # not the latest question: not asked again
        await wait_for_text(tg, alice.id, replies.EDITED)
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert len(ai.chat_requests) == 2
    assert await replay_list(env, tmp_path) == [str(alice.id)]
    types = ["UserRegistered", "QuestionAsked", "AnswerGiven", "QuestionAsked", "AnswerGiven"]
    assert await event_types(env, tmp_path, str(alice.id)) == types


async def test_allowlist_keeps_strangers_out_and_leaves_no_trace(tg, ai, tmp_path):
    alice, bob = tg.new_user("Alice"), tg.new_user("Bob")
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_ALLOWED_USERS=str(alice.id))
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(bob, "let me in")
        tg.send_command(bob, "start")
        await tg.wait_for_messages(bob.id, 2, timeout=20)
        assert texts(tg, bob.id) == [replies.NOT_ALLOWED] * 2
        query = tg.press_button(bob, tg.bot_messages(bob.id)[0], f"forget:yes:{bob.id}", strict=False)
        answer = await tg.wait_for(
            lambda: next((a for a in tg.callback_answers if a.callback_query_id == query), None), timeout=10
        )
        assert answer.show_alert
        assert answer.text == replies.NOT_ALLOWED
        tg.send_text(alice, "hello")
        await wait_for_text(tg, alice.id, "echo: hello")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert len(tg.bot_messages(bob.id)) == 2
    assert [r.messages[-1]["content"] for r in ai.chat_requests] == ["hello"]
    assert await replay_list(env, tmp_path) == [str(alice.id)]
    missing = await run_cli(env, tmp_path, "replay", str(bob.id), "--json")
    assert missing.returncode == 1


async def test_forget_erases_only_on_the_owners_yes(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice, bob = tg.new_user("Alice"), tg.new_user("Bob")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "remember me")
        await wait_for_text(tg, alice.id, "echo: remember me")
        tg.send_text(bob, "me too")
        await wait_for_text(tg, bob.id, "echo: me too")
        tg.send_command(alice, "forget")
        confirm = await tg.wait_for(
            lambda: next((m for m in tg.bot_messages(alice.id) if m.text == replies.FORGET_CONFIRM), None), timeout=10
        )
        buttons = [button for row in confirm.reply_markup["inline_keyboard"] for button in row]
        assert [b["text"] for b in buttons] == [replies.FORGET_BUTTON_YES, replies.FORGET_BUTTON_NO]
        yes, no = (b["callback_data"] for b in buttons)
        assert yes.startswith(f"forget:yes:{alice.id}:") and no.startswith(f"forget:no:{alice.id}:")
        assert len(yes.encode()) <= 64

        tg.send_text(alice, "another message")
        await wait_for_text(tg, alice.id, "echo: another message")
        answer_message = next(m for m in tg.bot_messages(alice.id) if m.text == "echo: another message")
        refused = [
            tg.press_button(alice, confirm, f"forget:yes:{bob.id}", strict=False),  # forged owner
            tg.press_button(alice, confirm, f"forget:yes:{alice.id}", strict=False),  # the old unsigned form
            tg.press_button(bob, confirm, yes),  # someone else presses the real button
            tg.press_button(alice, confirm, yes.replace(":yes:", ":maybe:"), strict=False),  # forged answer
            tg.press_button(alice, answer_message, yes, strict=False),  # the real data on another message
        ]
        await tg.wait_for(lambda: len(tg.callback_answers) >= 5, timeout=10)
        answers = {a.callback_query_id: a for a in tg.callback_answers}
        assert all(answers[q].show_alert and answers[q].text == replies.STALE_BUTTON for q in refused)
        assert tg.message(alice.id, confirm.message_id).text == replies.FORGET_CONFIRM
        exchanges = ["QuestionAsked", "AnswerGiven"] * 2
        assert await event_types(env, tmp_path, str(alice.id)) == ["UserRegistered", *exchanges]

        tg.press_button(alice, confirm, yes)
        await tg.wait_for(lambda: tg.message(alice.id, confirm.message_id).text == replies.FORGET_DONE, timeout=10)
        assert_log_clean(bot)
    gone = await run_cli(env, tmp_path, "replay", str(alice.id), "--json")
    assert gone.returncode == 1
    assert "Traceback" not in gone.stderr
    assert await replay_list(env, tmp_path) == [str(bob.id)]


async def test_groups_answer_only_when_addressed_and_share_one_stream(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice, bob = tg.new_user("Alice"), tg.new_user("Bob")
    group = tg.new_group("Friends")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "just chatting with Bob", group)
        tg.send_text(bob, "yes, not for the bot", group)
        tg.send_sticker(bob, chat=group)
        tg.mention_bot(alice, group, "what is a fox?")
        await wait_for_text(tg, group.id, "echo: Alice: what is a fox?")
        answer = next(m for m in tg.bot_messages(group.id) if "echo: Alice: what is a fox?" in (m.text or ""))
        tg.send_text(bob, "still not for the bot", group)
        tg.reply(bob, answer, "and a wolf?")
        await wait_for_text(tg, group.id, "echo: Bob: and a wolf?")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert [r.messages[-1]["content"] for r in ai.chat_requests] == ["Alice: what is a fox?", "Bob: and a wolf?"]
    assert len(tg.bot_messages(group.id)) == 2
    assert tg.bot_messages(alice.id) == [] and tg.bot_messages(bob.id) == []
    assert await replay_list(env, tmp_path) == [str(group.id)]
    types = await event_types(env, tmp_path, str(group.id))
    assert types.count("QuestionAsked") == 2 and types.count("AnswerGiven") == 2
    assert ai.chat_requests[1].messages[1:] == [
        {"role": "user", "content": "Alice: what is a fox?"},
        {"role": "assistant", "content": "echo: Alice: what is a fox?"},
        {"role": "user", "content": "Bob: and a wolf?"},
    ]


async def test_a_slow_answer_is_shown_growing_and_a_quick_one_arrives_as_one_message(tg, ai, tmp_path):
    words = [f"w{n:02d}" for n in range(30)]
    ai.set_answer(" ".join(words))
    ai.chunk_delay = 0.05  # one token every 50 ms: about 1.5 s in all, against an edit interval of 0.3 s
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_STREAM="edits")
    slow, quick = tg.new_user("Slow"), tg.new_user("Quick")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(slow, "Take your time")
        await wait_for_text(tg, slow.id, words[-1], timeout=20)
        ai.chunk_delay = 0.0
        tg.send_text(quick, "Be quick")
        await wait_for_text(tg, quick.id, words[-1], timeout=20)
        await tg.wait_for(lambda: not any(text.endswith("▌") for text in texts(tg, slow.id)), timeout=5)
        assert_log_clean(bot)
    [shown] = tg.bot_messages(slow.id)
    previews = [text for text in shown.texts if text and text.endswith("▌")]
    assert len(previews) >= 2, shown.texts  # it grew in front of the user...
    assert all(len(a) < len(b) for a, b in itertools.pairwise(previews))
    assert shown.texts[-1] == " ".join(words)  # ...and ended as the whole answer
    [sent] = tg.bot_messages(quick.id)
    assert sent.texts == [" ".join(words)]  # no preview flickered past


async def test_a_slow_reply_shows_the_indicator_of_the_chats_mode_even_after_a_restart(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    painter, talker = tg.new_user("Painter"), tg.new_user("Talker")
    async with running_bot(env, tmp_path):
        tg.send_command(painter, "image")
        await wait_for_text(tg, painter.id, replies.IMAGE_MODE)
    ai.delay = 1.0  # slower than the indicator's 0.25 s
    async with running_bot(env, tmp_path) as bot:  # a new process: the mode comes from the log
        tg.send_text(painter, "a red fox in the snow")
        tg.send_text(talker, "What is a fox?")
        await tg.wait_for(lambda: bool(tg.photos(painter.id)) and len(texts(tg, talker.id)) == 1, timeout=20)
        assert_log_clean(bot)
    assert {record.action for record in tg.chat_actions(painter.id)} == {"upload_photo"}
    assert {record.action for record in tg.chat_actions(talker.id)} == {"typing"}
