"""/export end to end: a user gets their own stream as two documents (the bytes `convo export` writes), a group's
members are refused while its admins get the group's, and a stream too big for a document gets a reply instead."""

from __future__ import annotations

from datetime import timedelta

from adapters.sqlite.store import SqliteEventStore
from adapters.telegram import replies
from domain.events import PersonaSelected, RecordedEvent, UserRegistered
from tests.e2e.harness import assert_log_clean, bot_env, run_cli, running_bot, texts, wait_for_text
from tests.strategies import EPOCH


async def test_a_user_gets_their_stream_as_json_lines_and_a_transcript(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice, bob = tg.new_user("Alice", username="alice"), tg.new_user("Bob")
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(bob, "export")
        await wait_for_text(tg, bob.id, replies.EXPORT_EMPTY)
        tg.send_text(alice, "What is *2+2*?")
        await wait_for_text(tg, alice.id, "echo: What is")
        tg.send_command(alice, "undo")
        await wait_for_text(tg, alice.id, "Removed your question")
        tg.send_command(alice, "export")
        await tg.wait_for(lambda: len(tg.documents(alice.id)) == 2, timeout=15)
        assert_log_clean(bot)
    assert "export" in {command["command"] for command in tg.commands()}
    data, transcript = tg.documents(alice.id)
    assert tg.documents(bob.id) == []
    assert (data.upload.filename, transcript.upload.filename) == (f"convo-{alice.id}.jsonl", f"convo-{alice.id}.md")
    assert data.caption is not None and data.caption.startswith("Everything I stored about this chat: ")
    jsonl = await run_cli(env, tmp_path, "export", str(alice.id))
    markdown = await run_cli(env, tmp_path, "export", str(alice.id), "--format", "md")
    assert data.upload.data == jsonl.stdout.encode()
    assert transcript.upload.data == markdown.stdout.encode()
    shown = transcript.upload.data.decode()
    assert "**User:** Alice (@alice)" in shown
    assert "· *undone*\n\n> What is \\*2+2\\*?" in shown
    assert "> echo: What is *2+2*?" in shown

    (tmp_path / "sent.jsonl").write_bytes(data.upload.data)
    copy_env = bot_env(tg, ai, f"sqlite:///{tmp_path}/copy.db")
    assert (await run_cli(copy_env, tmp_path, "import", "sent.jsonl")).returncode == 0
    assert (await run_cli(copy_env, tmp_path, "export", str(alice.id))).stdout == jsonl.stdout


async def test_in_a_group_only_admins_export_and_they_get_the_groups_stream(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    member, admin = tg.new_user("Mia"), tg.new_user("Ada")
    group = tg.new_group("Club")
    tg.make_admin(group, admin)
    async with running_bot(env, tmp_path) as bot:
        tg.mention_bot(member, group, "hello there")
        await wait_for_text(tg, group.id, "echo: Mia: hello there")
        tg.send_command(member, "export", chat=group)
        await wait_for_text(tg, group.id, replies.EXPORT_ADMINS_ONLY)
        tg.send_command(admin, "export", chat=group)
        await tg.wait_for(lambda: len(tg.documents(group.id)) == 2, timeout=15)
        assert_log_clean(bot)
    assert [d.upload.filename for d in tg.documents(group.id)] == [f"convo-{group.id}.jsonl", f"convo-{group.id}.md"]
    assert tg.documents(member.id) == [] and tg.documents(admin.id) == []
    assert "*Asked by Mia*" in tg.documents(group.id)[1].upload.data.decode()


async def test_a_stream_too_big_for_one_document_gets_a_reply_and_no_document(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    store = SqliteEventStore.from_url(f"sqlite:///{tmp_path}/convo.db")
    await store.init_schema()
    personas = [PersonaSelected(name="custom", prompt=f"{n}" * 9_000_000) for n in range(6)]
    events = [UserRegistered(user_id=alice.id, username=None, first_name="Alice", language_code="en"), *personas]
    await store.import_recorded(
        [
            RecordedEvent(
                stream=str(alice.id),
                version=version,
                recorded_at=EPOCH + timedelta(seconds=version),
                causation_id=f"tg:{version}",
                event=event,
            )
            for version, event in enumerate(events, start=1)
        ]
    )
    await store.close()
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(alice, "export")
        said = await wait_for_text(tg, alice.id, "too big to send", timeout=60)
        assert_log_clean(bot)
    assert said == replies.EXPORT_TOO_BIG.format(limit=50)
    assert tg.documents(alice.id) == [] and texts(tg, alice.id) == [said]
