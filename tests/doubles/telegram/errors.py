"""Errors returned by the fake Bot API, with the descriptions the real server uses.

The real server (tdlib/telegram-bot-api) answers every failure with
``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}`` and
the same HTTP status.  :class:`ApiError` carries exactly that triple; the helper
constructors below keep the description texts in one place so handlers never
spell them twice.
"""

from __future__ import annotations

from typing import Any

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
SET_WEBHOOK_CONFLICT = "Conflict: terminated by setWebhook request"
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    """A Bot API failure: HTTP status == ``error_code`` plus a description."""

    def __init__(self, error_code: int, description: str, *, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.parameters = parameters or {}

    def to_json(self) -> dict[str, Any]:
        """The response body the real server would send for this error."""
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body


def bad_request(reason: str) -> ApiError:
    """A 400 with the ``Bad Request:`` prefix the server puts before tdlib's reason."""
    return ApiError(400, f"Bad Request: {reason}")


def parse_error(reason: str) -> ApiError:
    """A markup (HTML / Markdown) error: ``Bad Request: can't parse entities: <reason>``."""
    return bad_request(f"can't parse entities: {reason}")


def forbidden(reason: str) -> ApiError:
    """A 403 such as ``Forbidden: bot was blocked by the user``."""
    return ApiError(403, f"Forbidden: {reason}")


def conflict(description: str) -> ApiError:
    """A 409; ``description`` already carries the ``Conflict:`` prefix."""
    return ApiError(409, description)


def too_many_requests(retry_after: int) -> ApiError:
    """A 429 flood-control answer with ``parameters.retry_after`` like the real server."""
    retry_after = max(1, int(retry_after))
    return ApiError(
        429,
        f"Too Many Requests: retry after {retry_after}",
        parameters={"retry_after": retry_after},
    )


def unauthorized() -> ApiError:
    """Wrong bot token."""
    return ApiError(401, "Unauthorized")


def not_found() -> ApiError:
    """Unknown method or malformed URL."""
    return ApiError(404, "Not Found")


def chat_not_found() -> ApiError:
    """The chat is unknown to the bot (it never received an update from it)."""
    return bad_request("chat not found")
