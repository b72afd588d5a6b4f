"""Pictures in prompts (service/vision.py): which models are sent them, and their bytes, from memory when kept and
fetched again (and checked against their hash) when not; a picture that cannot be had leaves its text only."""

from __future__ import annotations

import hashlib

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from domain.events import Photo
from domain.ports import FileGone
from domain.prompt import ImagePart, Message
from service.vision import Pictures, Vision, VisionMode


def photo_of(data: bytes, name: str = "cat") -> Photo:
    """The Photo the log would record for these bytes."""
    return Photo(
        file_id=f"file-{name}",
        file_unique_id=f"unique-{name}",
        width=4,
        height=3,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def asked(text: str, *photos: Photo) -> Message:
    """A user message with pictures whose bytes are not filled in yet, as the prompt rule makes it."""
    return Message("user", text, tuple(ImagePart(photo) for photo in photos))


class Files:
    """A FileSource over a dict of file ids to bytes, counting reads; a missing id is gone."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})
        self.reads: list[str] = []

    async def read(self, file_id: str) -> bytes:
        self.reads.append(file_id)
        if file_id not in self.files:
            raise FileGone(f"{file_id} is gone")
        return self.files[file_id]


CAT, DOG = b"cat-picture", b"dog-picture"


# -- Vision


@given(st.sampled_from(["gpt-4o", "llama-3", "any"]), st.integers(min_value=0, max_value=5))
def test_auto_sends_pictures_until_the_model_refuses_them_once(model: str, history: int) -> None:
    vision = Vision("auto", history)
    assert vision.sees(model) and vision.history_for(model) == history
    vision.refused(model)
    assert not vision.sees(model) and vision.history_for(model) == 0
    assert vision.sees(model + "-other") and vision.history_for(model + "-other") == history


def test_auto_warns_once_per_model_that_refused() -> None:
    vision = Vision("auto")
    with structlog.testing.capture_logs() as logs:
        vision.refused("llama-3")
        vision.refused("llama-3")
        vision.refused("mistral")
    assert [entry["model"] for entry in logs if entry["event"] == "vision_unsupported"] == ["llama-3", "mistral"]


def test_on_keeps_sending_pictures_after_a_refusal() -> None:
    vision = Vision("on", history=3)
    vision.refused("gpt-4o")
    assert vision.sees("gpt-4o") and vision.history_for("gpt-4o") == 3


def test_off_never_sends_pictures() -> None:
    vision = Vision("off", history=3)
    assert not vision.sees("gpt-4o") and vision.history_for("gpt-4o") == 0
    vision.refused("gpt-4o")
    assert not vision.sees("gpt-4o")


@pytest.mark.parametrize(("mode", "sees"), [("auto", True), ("on", True), ("off", False)])
def test_the_default_history_is_the_newest_turn_with_pictures(mode: VisionMode, sees: bool) -> None:
    assert Vision(mode).history_for("m") == (1 if sees else 0)


# -- Pictures


async def test_a_kept_picture_is_filled_in_without_a_fetch() -> None:
    files = Files({"file-cat": CAT})
    pictures = Pictures(files)
    cat = photo_of(CAT)
    pictures.keep(cat, CAT)
    prompt = (Message("system", "be kind"), asked("what is it?", cat))
    filled = await pictures.filled(prompt)
    assert files.reads == []
    assert filled == prompt  # ImagePart.data takes no part in equality: check the bytes themselves
    assert [part.data for part in filled[1].images] == [CAT]


async def test_a_picture_not_kept_is_fetched_once_then_kept() -> None:
    files = Files({"file-cat": CAT})
    pictures = Pictures(files)
    prompt = (asked("what is it?", photo_of(CAT)),)
    first = await pictures.filled(prompt)
    second = await pictures.filled(prompt)
    assert files.reads == ["file-cat"]
    assert [part.data for part in first[0].images] == [CAT]
    assert [part.data for part in second[0].images] == [CAT]


async def test_messages_without_pictures_pass_unchanged_and_in_order() -> None:
    pictures = Pictures(Files({"file-cat": CAT}))
    prompt = (Message("system", "p"), asked("one", photo_of(CAT)), Message("assistant", "a"), Message("user", "two"))
    filled = await pictures.filled(prompt)
    assert [(message.role, message.content) for message in filled] == [(m.role, m.content) for m in prompt]
    assert [len(message.images) for message in filled] == [0, 1, 0, 0]


async def test_a_gone_picture_leaves_its_message_with_its_text_only_and_is_logged() -> None:
    files = Files({"file-dog": DOG})
    pictures = Pictures(files)
    cat, dog = photo_of(CAT), photo_of(DOG, "dog")
    with structlog.testing.capture_logs() as logs:
        filled = await pictures.filled((asked("which is nicer?", cat, dog), asked("and this?", cat)))
    assert [message.content for message in filled] == ["which is nicer?", "and this?"]
    assert [part.photo for part in filled[0].images] == [dog]
    assert [part.data for part in filled[0].images] == [DOG]
    assert filled[1].images == ()
    gone = [entry for entry in logs if entry["event"] == "photo_gone"]
    assert [entry["file_unique_id"] for entry in gone] == ["unique-cat", "unique-cat"]


async def test_a_picture_whose_bytes_changed_is_left_out_and_not_kept() -> None:
    files = Files({"file-cat": b"another picture under the same id"})
    pictures = Pictures(files)
    prompt = (asked("what is it?", photo_of(CAT)),)
    with structlog.testing.capture_logs() as logs:
        filled = await pictures.filled(prompt)
    assert filled[0].content == "what is it?" and filled[0].images == ()
    assert [entry["reason"] for entry in logs if entry["event"] == "photo_gone"] == ["the file's bytes changed"]
    await pictures.filled(prompt)
    assert files.reads == ["file-cat", "file-cat"]  # the wrong bytes were not kept


async def test_without_a_file_source_only_kept_pictures_are_sent() -> None:
    pictures = Pictures()
    cat, dog = photo_of(CAT), photo_of(DOG, "dog")
    pictures.keep(dog, DOG)
    filled = await pictures.filled((asked("both", cat, dog),))
    assert [part.photo for part in filled[0].images] == [dog]
    files = Files({"file-cat": CAT})
    pictures.attach(files)
    filled = await pictures.filled((asked("both", cat, dog),))
    assert [part.data for part in filled[0].images] == [CAT, DOG]
    assert files.reads == ["file-cat"]


async def test_the_oldest_kept_pictures_are_dropped_beyond_keep_bytes_and_fetched_again() -> None:
    one, two, three = b"1" * 6, b"2" * 6, b"3" * 6
    files = Files({"file-one": one, "file-two": two, "file-three": three})
    pictures = Pictures(files, keep_bytes=12)
    photos = {data: photo_of(data, name) for data, name in ((one, "one"), (two, "two"), (three, "three"))}
    for data, photo in photos.items():
        pictures.keep(photo, data)
    filled = await pictures.filled((asked("three", photos[three]), asked("two", photos[two])))
    assert files.reads == []  # 12 bytes: both newest are still kept
    assert [message.images[0].data for message in filled] == [three, two]
    filled = await pictures.filled((asked("one", photos[one]),))
    assert files.reads == ["file-one"]  # the oldest was dropped
    assert filled[0].images[0].data == one


async def test_the_newest_picture_is_kept_even_when_it_alone_is_beyond_keep_bytes() -> None:
    files = Files({"file-cat": CAT, "file-dog": DOG})
    pictures = Pictures(files, keep_bytes=4)
    cat, dog = photo_of(CAT), photo_of(DOG, "dog")
    pictures.keep(cat, CAT)
    pictures.keep(dog, DOG)
    await pictures.filled((asked("dog", dog),))
    assert files.reads == []
    await pictures.filled((asked("cat", cat),))
    assert files.reads == ["file-cat"]


@given(st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=12), st.integers(0, 60))
async def test_what_is_kept_is_the_newest_pictures_within_keep_bytes(sizes: list[int], keep_bytes: int) -> None:
    files = Files()
    pictures = Pictures(files, keep_bytes=keep_bytes)
    photos = []
    for index, size in enumerate(sizes):
        data = bytes([index]) * size
        photo = photo_of(data, str(index))
        files.files[photo.file_id] = data
        pictures.keep(photo, data)
        photos.append(photo)
    kept: set[int] = set()
    total = 0
    for index in reversed(range(len(sizes))):  # the newest first, as long as they fit (the newest always)
        if kept and total + sizes[index] > keep_bytes:
            break
        kept.add(index)
        total += sizes[index]
    for index, photo in reversed(list(enumerate(photos))):  # the kept first: a fetch keeps (and drops) more
        before = len(files.reads)
        await pictures.filled((asked("?", photo),))
        assert (len(files.reads) == before) == (index in kept), index
