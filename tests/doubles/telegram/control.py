"""A tiny HTTP control surface (``/_fake/...``) for driving a standalone fake server.

Only for manual tries and out-of-process benchmarks; in-process tests use the
``FakeTelegram`` methods directly.

* ``POST /_fake/send_text`` ``{"user_id": 1, "first_name": "Al", "text": "hi", "chat_id": null, "thread": null}``
* ``POST /_fake/update`` with a raw update object
* ``GET /_fake/calls`` - every recorded API call
* ``GET /_fake/messages?chat_id=1`` - messages of a chat with their text history
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .models import User

if TYPE_CHECKING:
    from .server import FakeTelegram


def add_control_routes(app: web.Application, tg: FakeTelegram) -> None:
    """Register the ``/_fake`` routes on ``app``."""

    async def send_text(request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        user = User(
            id=int(body["user_id"]),
            first_name=str(body.get("first_name") or "User"),
            username=body.get("username"),
            language_code=body.get("language_code", "en"),
        )
        chat = tg.state.chats.get(int(body["chat_id"])) if body.get("chat_id") is not None else None
        thread = int(body["thread"]) if body.get("thread") is not None else None
        message = tg.send_text(user, str(body["text"]), chat, thread=thread)
        return web.json_response({"message_id": message.message_id, "update_id": message.update_id})

    async def push_update(request: web.Request) -> web.Response:
        update = tg.push_update(await request.json())
        return web.json_response({"update_id": update["update_id"]})

    async def calls(request: web.Request) -> web.Response:
        return web.json_response(
            [{"method": c.method, "params": c.params, "status": c.status, "response": c.response} for c in tg.calls]
        )

    async def messages(request: web.Request) -> web.Response:
        chat_id = int(request.query["chat_id"])
        payload = [
            {**message.to_api(), "deleted": message.deleted, "history": message.texts}
            for message in tg.messages(chat_id)
        ]
        return web.json_response(payload)

    app.router.add_post("/_fake/send_text", send_text)
    app.router.add_post("/_fake/update", push_update)
    app.router.add_get("/_fake/calls", calls)
    app.router.add_get("/_fake/messages", messages)
