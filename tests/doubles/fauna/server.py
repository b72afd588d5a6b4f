"""`FaunaDouble`: an HTTP server in a background thread that answers FQL v4 queries the way a Fauna node does.

Requests are `POST /` with a JSON FQL expression and the key's secret as `Authorization: Bearer <secret>` (what
faunadb 4.5.2 sends) or HTTP basic auth with the secret as user name (what older drivers and curl users send).
Answers are `{"resource": <value>}` with an `X-Txn-Time` header, or Fauna's error JSON
`{"errors": [{"position", "code", "description"}]}` with its status (401 unauthorized, 400 most query errors, 404
not found, ...). One query runs at a time, as one transaction: all of it is applied or none.

For tests of the store's error handling, `fail_next` makes the next queries answer with a given error instead, and
`contend` makes the next writing transactions lose a (pretended) race: 409 `contended transaction`, nothing kept.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.doubles.fauna.database import Database, Transaction
from tests.doubles.fauna.errors import CONTENDED, QueryError
from tests.doubles.fauna.evaluator import Evaluator
from tests.doubles.fauna.values import encode

DEFAULT_SECRET = "fnAEdoubleSecret"
"""The secret the double accepts unless given another (a made-up key)."""


class FaunaDouble:
    """A Fauna node for tests: one database, reached at `endpoint` with `secret`."""

    def __init__(self, secret: str = DEFAULT_SECRET, *, index_build_seconds: float = 0.0) -> None:
        """`index_build_seconds`: how long an index created over more than 128 documents reports inactive."""
        self.secret = secret
        self.database = Database(index_build_seconds)
        self.queries = 0
        self.contended = 0
        """How many transactions `contend` has aborted so far."""
        self._lock = threading.Lock()
        self._faults: deque[QueryError] = deque()
        self._contention: list[str | None] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:<port>` once started."""
        if self._server is None:
            raise RuntimeError("the Fauna double is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FaunaDouble:
        """Listen on a free local port and serve from a background thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.double = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FaunaDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(self, code: str, description: str, *, times: int = 1) -> None:
        """Answer the next `times` queries with this Fauna error (status from its code) without running them."""
        for _ in range(times):
            self._faults.append(QueryError(code, description, []))

    def contend(self, times: int = 1, *, collection: str | None = None) -> None:
        """Abort the next `times` transactions that write and touch `collection` (read or write its documents or
        indexes; any collection when None) with 409 `contended transaction`, as Fauna does when a concurrent
        transaction changed what they read. They run in full first, then nothing they did is kept. Read-only queries
        never contend: Fauna serves them from a snapshot."""
        with self._lock:
            self._contention.extend([collection] * times)

    def answer(self, authorization: str | None, body: bytes) -> tuple[int, bytes, int | None]:
        """(HTTP status, JSON body, transaction time) for one query request. The body is made before the
        transaction is kept, so a write is never committed behind an answer that could not be sent."""
        if not self._authorized(authorization):
            return 401, _json({"errors": [{"code": "unauthorized", "description": "Unauthorized"}]}), None
        try:
            expression = json.loads(body)
        except ValueError:
            refusal = {"errors": [{"code": "invalid expression", "description": "Request body is not JSON."}]}
            return 400, _json(refusal), None
        with self._lock:
            self.queries += 1
            if self._faults:
                fault = self._faults.popleft()
                return fault.status, _json(fault.body()), None
            txn = self.database.begin()
            try:
                answer = _json({"resource": encode(Evaluator(txn).eval(expression, {}, []))})
            except QueryError as error:
                txn.rollback()
                return error.status, _json(error.body()), txn.ts
            except Exception as error:  # a bug of the double: answer like Fauna's 500, never half-apply
                txn.rollback()
                failure = {"errors": [{"code": "internal server error", "description": repr(error)}]}
                return 500, _json(failure), txn.ts
            if self._loses_race(txn):
                txn.rollback()
                return 409, _json(CONTENDED), None
        return (201 if txn.wrote else 200), answer, txn.ts

    def _loses_race(self, txn: Transaction) -> bool:
        """Whether a pending `contend` applies to this transaction (and is used up by it)."""
        if not txn.wrote:
            return False
        for at, collection in enumerate(self._contention):
            if collection is None or collection in txn.touched:
                del self._contention[at]
                self.contended += 1
                return True
        return False

    def _authorized(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip() == self.secret
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(credentials.strip()).decode("utf-8").partition(":")[0]
            except ValueError:
                return False
            return user == self.secret
        return False


def _json(payload: dict[str, Any]) -> bytes:
    """The answer's bytes; text any JSON parser reads (a lone surrogate goes out escaped, as `\\udc80`)."""
    return json.dumps(payload, separators=(",", ":")).encode("ascii")


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, so the driver's connection pool reuses connections."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Answers are written as headers then body; without NODELAY, Nagle's algorithm and the client's delayed ACK
        # hold each answer back by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        double: FaunaDouble = self.server.double  # type: ignore[attr-defined]
        status, payload, txn_time = double.answer(self.headers.get("Authorization"), body)
        self._send(status, payload, txn_time)

    def do_GET(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))  # a body left unread would poison keep-alive
        if self.path.split("?")[0] == "/ping":
            self._send(200, _json({"resource": "Scope write is OK"}), None)
        else:
            self._send(404, _json({"errors": [{"code": "not found", "description": "Not Found"}]}), None)

    def _send(self, status: int, data: bytes, txn_time: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if txn_time is not None:
            self.send_header("X-Txn-Time", str(txn_time))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read failures from responses, not from stderr."""
