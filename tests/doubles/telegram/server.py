"""``FakeTelegram``: an in-process aiohttp server speaking the Telegram Bot API.

Typical use from a pytest-asyncio test::

    async with FakeTelegram() as tg:
        bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.api_base)))
        alice = tg.new_user("Alice")
        tg.send_text(alice, "hello")
        ...  # run the bot
        [reply] = await tg.wait_for_messages(alice.id, 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
import attrs
from aiohttp import web

from . import (  # noqa: F401  (register the methods)
    api_bot,
    api_drafts,
    api_files,
    api_media,
    api_members,
    api_messages,
    api_updates,
)
from .control import add_control_routes
from .errors import ApiError, not_found, unauthorized
from .files import StoredFile
from .flood import FloodLimits
from .inject_media import MediaInjector
from .models import (
    ApiCall,
    CallbackAnswer,
    CallbackQueryRecord,
    Chat,
    ChatActionRecord,
    DraftRecord,
    ForumTopic,
    StoredMessage,
    ThreadFilter,
    User,
    in_thread,
)
from .params import Params, read_params
from .registry import METHODS, UNEMULATED, Handler, Reply
from .state import DEFAULT_TOKEN, BotState, InjectedFailure, ServerConfig, WebhookState
from .webhook import WebhookWorker

T = TypeVar("T")
log = logging.getLogger(__name__)

_API_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[^/]*)$")
_FILE_PATH = re.compile(r"^/file/bot(?P<token>[^/]+)/(?P<path>.+)$")
_TOKEN = re.compile(r"^\d+:[\w-]+$")
_MAX_REQUEST_SIZE = 60 * 1024 * 1024
_CONFIGURED = object()
_WEBHOOK_METHODS = frozenset({"setwebhook", "deletewebhook"})


class FakeTelegram(MediaInjector):
    """A fake Telegram Bot API server for one bot; see the package README for the full API."""

    def __init__(self, token: str = DEFAULT_TOKEN, **options: Any) -> None:
        if not _TOKEN.match(token):
            raise ValueError(f"not a bot token: {token!r}")
        self.config = ServerConfig(token=token, **options)
        self.state = BotState(self.config)
        self.port = self.config.port
        self.internal_errors: list[BaseException] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._worker: WebhookWorker | None = None
        self._stopping = asyncio.Event()
        self._init_injector()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> FakeTelegram:
        """Listen on ``host:port`` (port 0 picks a free one)."""
        self._stopping.clear()
        app = web.Application(client_max_size=_MAX_REQUEST_SIZE)
        add_control_routes(app, self)
        app.router.add_get("/file/{tail:.*}", self._handle_download)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()
        self._worker = WebhookWorker(self.state, self._session, self._run_reply_method)
        return self

    async def stop(self) -> None:
        """Stop serving; a waiting long poll returns (empty) at once, and so does a stalled call."""
        self._stopping.set()
        self.state.queue.release_long_poll()
        if self._worker is not None:
            await self._worker.stop()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._session = self._worker = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ addresses and identity
    @property
    def api_base(self) -> str:
        """Base URL for the bot (``TELEGRAM_API_BASE``).

        Methods live at ``{api_base}/bot{token}/{method}``.
        """
        return f"http://{self.config.host}:{self.port}"

    @property
    def token(self) -> str:
        """The only token this server accepts."""
        return self.config.token

    @property
    def bot_user(self) -> User:
        """The bot's own user record (what ``getMe`` returns)."""
        return self.state.bot_user

    def api_url(self, method: str) -> str:
        """Full URL of a method."""
        return f"{self.api_base}/bot{self.token}/{method}"

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, request: web.Request) -> web.Response:
        arrival, wall = time.monotonic(), time.time()
        match = _API_PATH.match(request.path)
        if match is None:
            return web.json_response(not_found().to_json(), status=404)
        try:
            params = await read_params(request)
            failure: ApiError | None = None
        except ApiError as error:
            params, failure = Params(), error
        call = ApiCall(
            method=match["method"],
            params=dict(params.values),
            files=dict(params.files),
            time=arrival,
            wall_time=wall,
        )
        self.state.calls.append(call)
        page, stall = self.state.take_html_failure(call.method.lower())
        if page is not None:  # a proxy in front of the Bot API answers instead of it (nginx's error page)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), stall)
            call.status, call.response = page, {"html": True}
            self.state.notify()
            return web.Response(text=_html_error_page(page), status=page, content_type="text/html")
        if match["token"] != self.token:
            failure = unauthorized()
        status, body = (failure.error_code, failure.to_json()) if failure else await self._dispatch(call.method, params)
        call.status, call.response = status, body
        self.state.notify()
        return web.json_response(body, status=status, dumps=lambda data: json.dumps(data, ensure_ascii=False))

    async def _handle_download(self, request: web.Request) -> web.Response:
        """``GET /file/bot<token>/<file_path>``: a file's bytes; 404 for a wrong token, an unknown path, or a file
        ``getFile`` would not hand out."""
        match = _FILE_PATH.match(request.path)
        files = self.state.files
        stored = files.by_path.get(match["path"]) if match and match["token"] == self.token else None
        if stored is None or not files.downloadable(stored):
            return web.json_response(not_found().to_json(), status=404)
        files.downloads[stored.file_id] += 1
        self.state.notify()
        return web.Response(body=stored.content, content_type=stored.mime_type or "application/octet-stream")

    async def _dispatch(self, method: str, params: Params) -> tuple[int, dict[str, Any]]:
        """Run one method; returns the HTTP status and response body."""
        key = method.lower()
        entry = METHODS.get(key)
        if key in self.state.removed_methods:
            self.state.removed_methods[key] += 1
            entry = None
        if entry is None:
            return _unknown_method(method)
        try:
            result = await self._run_handler(key, entry[1], params)
        except ApiError as error:
            return error.error_code, error.to_json()
        except Exception as exc:  # a bug in the fake itself: surface it, do not hide it
            log.exception("fake Telegram failed in %s", method)
            self.internal_errors.append(exc)
            return 500, {"ok": False, "error_code": 500, "description": f"Internal Server Error: {exc!r}"}
        return 200, _success_body(result)

    async def _run_handler(self, key: str, handler: Handler, params: Params) -> Any:
        """Apply injected failures, run the handler, keep the webhook worker in sync."""
        injected = self.state.take_failure(key)
        if injected is not None:
            raise injected
        try:
            return await handler(self.state, params)
        finally:
            if self._worker is not None and key in _WEBHOOK_METHODS:
                self._worker.sync()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Run a method in-process (no HTTP, not recorded); returns the response body."""
        values = {key: value if isinstance(value, str) else json.dumps(value) for key, value in params.items()}
        return (await self._dispatch(method, Params(values=values)))[1]

    async def _run_reply_method(self, method: str, values: dict[str, str]) -> None:
        """Execute a method returned in a webhook answer, recording it like an HTTP call."""
        call = ApiCall(method=method, params=dict(values), files={}, time=time.monotonic(), wall_time=time.time())
        self.state.calls.append(call)
        call.status, call.response = await self._dispatch(method, Params(values=dict(values)))

    # ------------------------------------------------------------------ configuration
    @property
    def flood_limits(self) -> FloodLimits:
        """Current flood-control settings."""
        return self.state.flood.limits

    @flood_limits.setter
    def flood_limits(self, limits: FloodLimits) -> None:
        self.state.flood.configure(limits)

    def set_flood_limits(self, **changes: Any) -> FloodLimits:
        """Change some flood-control fields (e.g. ``chat_burst=1``); buckets are refilled."""
        limits = attrs.evolve(self.flood_limits, **changes)
        self.flood_limits = limits
        return limits

    def disable_flood_control(self) -> None:
        """Turn flood control off (benchmarks)."""
        self.flood_limits = FloodLimits.disabled()

    def fail_next(
        self,
        method: str | None = None,
        *,
        error_code: int = 500,
        description: str = "Internal Server Error",
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (any method if None) fail with the given error."""
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        error = ApiError(error_code, description, parameters=parameters)
        self.state.failures.append(InjectedFailure(method.lower() if method else None, error, times))

    def fail_next_html(self, method: str | None = None, *, status: int = 502, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` (any if None) answer an HTML error page, as a reverse proxy
        in front of a self-hosted Bot API does when the server behind it is down."""
        self.state.html_failures.append([method.lower() if method else None, status, times])

    def stall_next(self, method: str | None = None, *, seconds: float = 75.0, status: int = 504) -> None:
        """Make the next call of ``method`` (any if None) hang for ``seconds`` and then answer a proxy's HTML error
        page, without ever reaching the Bot API: what a caller sees when the server behind nginx stalls."""
        self.state.html_failures.append([method.lower() if method else None, status, 1, seconds])

    def flood_next(self, method: str | None = None, *, retry_after: int = 5, times: int = 1) -> None:
        """Make the next call(s) answer ``429 Too Many Requests: retry after N``."""
        self.fail_next(
            method,
            error_code=429,
            description=f"Too Many Requests: retry after {retry_after}",
            retry_after=retry_after,
            times=times,
        )

    def break_url(self, url: str) -> None:
        """Photos sent by this URL fail with ``failed to get HTTP URL content``."""
        self.state.broken_urls.add(url)

    def expire_file(self, file_id: str) -> None:
        """From now on ``getFile`` answers ``wrong file_id or the file is temporarily unavailable`` for the file
        and its download path is a 404 (Telegram lost it, or its link expired)."""
        if self.state.files.get(file_id) is None:
            raise LookupError(f"no file {file_id!r}")
        self.state.files.unavailable.add(file_id)

    def restore_file(self, file_id: str) -> None:
        """Undo :meth:`expire_file`."""
        self.state.files.unavailable.discard(file_id)

    def remove_method(self, method: str) -> None:
        """Emulate an older Bot API server without ``method``: it is answered ``404 Not Found`` like any unknown
        method (fault injection included: nothing runs), and its calls are counted (:meth:`removed_method_calls`).

        Removing an already removed method keeps its count.
        """
        key = method.lower()
        if key not in METHODS:
            raise ValueError(f"{method!r} is not a method the fake emulates")
        self.state.removed_methods.setdefault(key, 0)

    def restore_method(self, method: str) -> None:
        """Undo :meth:`remove_method` (the server was upgraded); the count is forgotten."""
        self.state.removed_methods.pop(method.lower(), None)

    def removed_method_calls(self, method: str) -> int:
        """How many calls of a removed ``method`` were answered 404 since :meth:`remove_method`."""
        key = method.lower()
        if key not in self.state.removed_methods:
            raise ValueError(f"{method!r} was not removed")
        return self.state.removed_methods[key]

    # ------------------------------------------------------------------ readers
    # ``thread=`` filters by forum topic: None (default) keeps the whole chat, an id keeps that topic, and
    # ``GENERAL_TOPIC`` keeps what is in no topic (the General topic of a forum; everything of a chat without
    # topics).  Reply threads of a supergroup without topics are no topics.
    @property
    def calls(self) -> list[ApiCall]:
        """Every API request, in arrival order."""
        return self.state.calls

    def calls_to(self, method: str) -> list[ApiCall]:
        """Requests to ``method`` (case-insensitive)."""
        return [call for call in self.state.calls if call.method.lower() == method.lower()]

    def messages(self, chat_id: int, *, thread: ThreadFilter = None) -> list[StoredMessage]:
        """Every message of a chat (users' and bot's, service and deleted ones included) by id."""
        return [m for m in self.state.chat_messages(chat_id) if in_thread(m.thread, thread)]

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """One message (even if deleted)."""
        return self.state.messages.get(chat_id, {}).get(message_id)

    def bot_messages(
        self, chat_id: int | None = None, *, include_deleted: bool = False, thread: ThreadFilter = None
    ) -> list[StoredMessage]:
        """Messages the bot sent (in one chat or everywhere; in one forum topic), oldest first."""
        chat_ids = [chat_id] if chat_id is not None else list(self.state.messages)
        found = [m for cid in chat_ids for m in self.state.chat_messages(cid) if m.from_bot]
        return [m for m in found if (include_deleted or not m.deleted) and in_thread(m.thread, thread)]

    def last_bot_message(self, chat_id: int, *, thread: ThreadFilter = None) -> StoredMessage | None:
        """The bot's latest live message in a chat (in one forum topic)."""
        sent = self.bot_messages(chat_id, thread=thread)
        return sent[-1] if sent else None

    def photos(self, chat_id: int | None = None, *, thread: ThreadFilter = None) -> list[StoredMessage]:
        """Photo messages the bot sent."""
        sent = self.bot_messages(chat_id, include_deleted=True, thread=thread)
        return [message for message in sent if "photo" in message.content]

    def voices(self, chat_id: int | None = None, *, thread: ThreadFilter = None) -> list[StoredMessage]:
        """Voice notes the bot sent (``message.upload`` holds an uploaded one's bytes)."""
        sent = self.bot_messages(chat_id, include_deleted=True, thread=thread)
        return [message for message in sent if "voice" in message.content]

    def documents(self, chat_id: int | None = None, *, thread: ThreadFilter = None) -> list[StoredMessage]:
        """Documents the bot sent (``message.upload`` holds an uploaded one's bytes and file name)."""
        sent = self.bot_messages(chat_id, include_deleted=True, thread=thread)
        return [message for message in sent if "document" in message.content]

    def file(self, file_id: str) -> StoredFile | None:
        """A file the server issued (``.data``, ``.size``, ``.mime_type``, ``.file_path``...)."""
        return self.state.files.get(file_id)

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes a download of the file serves."""
        stored = self.state.files.get(file_id)
        if stored is None:
            raise LookupError(f"no file {file_id!r}")
        return stored.content

    def downloads(self, file_id: str) -> int:
        """How many times the file was downloaded (``GET /file/bot<token>/<file_path>``)."""
        return self.state.files.downloads[file_id]

    def file_url(self, file_id: str) -> str:
        """Where the file is downloaded from (as aiogram builds it from ``getFile``'s ``file_path``)."""
        stored = self.state.files.get(file_id)
        if stored is None:
            raise LookupError(f"no file {file_id!r}")
        return f"{self.api_base}/file/bot{self.token}/{stored.file_path}"

    def topics(self, chat: int | Chat) -> list[ForumTopic]:
        """The forum topics of a chat (:meth:`create_topic`), oldest first."""
        chat_id = chat if isinstance(chat, int) else chat.id
        return list(self.state.topics.get(chat_id, {}).values())

    def drafts(
        self, chat: int | Chat | User | None = None, *, draft_id: int | None = None, thread: ThreadFilter = None
    ) -> list[DraftRecord]:
        """``sendMessageDraft`` calls that succeeded (in one chat, of one draft id, in one topic), oldest first."""
        chat_id = chat if chat is None or isinstance(chat, int) else chat.id
        return [
            record
            for record in self.state.drafts
            if (chat_id is None or record.chat_id == chat_id)
            and (draft_id is None or record.draft_id == draft_id)
            and in_thread(record.message_thread_id, thread)
        ]

    def chat_actions(self, chat_id: int | None = None, *, thread: ThreadFilter = None) -> list[ChatActionRecord]:
        """``sendChatAction`` calls that succeeded (in one chat, in one forum topic)."""
        return [
            record
            for record in self.state.chat_actions
            if (chat_id is None or record.chat_id == chat_id) and in_thread(record.message_thread_id, thread)
        ]

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, str]]:
        """The command list set for a scope (default scope if None) and language."""
        normalized = json.dumps(scope or {"type": "default"}, sort_keys=True)
        return [dict(item) for item in self.state.commands.get((normalized, language_code), [])]

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        """``answerCallbackQuery`` calls that succeeded."""
        return self.state.callback_answers

    def callback_query(self, query_id: str) -> CallbackQueryRecord:
        """A button press and its answer (``.answer``)."""
        return self.state.callback_queries[query_id]

    @property
    def updates(self) -> list[dict[str, Any]]:
        """Every update ever queued (confirmed or not)."""
        return self.state.queue.history

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by the bot."""
        return self.state.queue.pending

    def handed_over_at(self, update_id: int) -> float | None:
        """When (time.monotonic) a getUpdates response first carried the update to the bot; None if never."""
        return self.state.queue.first_handed_over.get(update_id)

    def delivery_count(self, update_id: int) -> int:
        """How many ``getUpdates`` answers contained the update."""
        return self.state.queue.delivery_counts.get(update_id, 0)

    @property
    def webhook(self) -> WebhookState:
        """The webhook configuration set by the bot."""
        return self.state.webhook

    # ------------------------------------------------------------------ waiting
    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy (re-checked on every server event); return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s; recent calls: {self._recent_calls()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.state.changed.wait(), min(remaining, 0.25))

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        thread: ThreadFilter = None,
    ) -> list[StoredMessage]:
        """Wait until the bot has at least ``count`` live messages in the chat (in one topic); return them all."""

        def enough() -> list[StoredMessage] | None:
            sent = self.bot_messages(chat_id, thread=thread)
            return sent if sent and len(sent) >= count else None

        return await self.wait_for(enough, timeout)

    async def wait_for_call(
        self,
        method: str,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int = 0,
        predicate: Callable[[ApiCall], bool] | None = None,
    ) -> ApiCall:
        """Wait for a finished call to ``method`` among ``calls[since:]`` (matching ``predicate``)."""

        def find() -> ApiCall | None:
            for call in self.state.calls[since:]:
                if call.done and call.method.lower() == method.lower() and (predicate is None or predicate(call)):
                    return call
            return None

        return await self.wait_for(find, timeout)

    async def wait_until_consumed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until the bot confirmed every queued update."""
        await self.wait_for(lambda: not self.state.queue.pending, timeout)

    def _recent_calls(self) -> list[str]:
        return [f"{call.method}->{call.status}" for call in self.state.calls[-8:]]

    # ------------------------------------------------------------------ webhook
    async def deliver_webhook(self, update: dict[str, Any] | None = None, *, secret: Any = _CONFIGURED) -> int:
        """POST an update to the bot's webhook like Telegram does; returns the HTTP status.

        Without ``update`` the oldest pending update is delivered (and confirmed on
        2xx).  ``secret`` defaults to the token the bot set; pass a wrong string to
        test rejection, or ``None`` to omit the ``X-Telegram-Bot-Api-Secret-Token`` header.
        A failed connection returns 0.
        """
        if self._worker is None or not self.state.webhook.active:
            raise RuntimeError("the bot has not set a webhook")
        from_queue = update is None
        if update is None:
            if not self.state.queue.pending:
                raise RuntimeError("no pending update to deliver")
            update = self.state.queue.pending[0]
        elif "update_id" not in update:
            update = {"update_id": self.state.queue.next_id, **update}
            self.state.queue.next_id += 1
        header = (self.state.webhook.secret_token or None) if secret is _CONFIGURED else secret
        outcome = await self._worker.deliver(update, header)
        if from_queue and outcome.ok:
            self.state.queue.remove(update["update_id"])
            self.state.notify()
        return outcome.status


def _html_error_page(status: int) -> str:
    reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}.get(status, "Error")
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"
    )


def _unknown_method(method: str) -> tuple[int, dict[str, Any]]:
    """404 like Telegram, or 501 for a real method this fake does not emulate."""
    if method.lower() in UNEMULATED:
        description = f"Not Implemented: {method} is not emulated by the fake server"
        return 501, {"ok": False, "error_code": 501, "description": description}
    return 404, not_found().to_json()


def _success_body(result: Any) -> dict[str, Any]:
    """``{"ok": true, "result": ...}`` plus the optional description of a :class:`Reply`."""
    if not isinstance(result, Reply):
        return {"ok": True, "result": result}
    body: dict[str, Any] = {"ok": True, "result": result.result}
    if result.description:
        body["description"] = result.description
    return body
