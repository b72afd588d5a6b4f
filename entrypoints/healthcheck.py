"""`python -m entrypoints.healthcheck`: the container's health probe, GET /healthz on the webhook server.

It asks the server that CONVO_WEBHOOK_LISTEN (from the environment or `.env`, as the bot reads it) places; a server
listening on every interface is asked on the loopback. Exit 0 when it answers 200 with `{"status": "ok"}`; otherwise
exit 1 with one line on stderr saying why. Polling mode serves no /healthz, so this probe fails there.
"""

from __future__ import annotations

import http.client
import json
import sys
import urllib.request
from collections.abc import Mapping

from entrypoints.config import environment

DEFAULT_LISTEN = "0.0.0.0:8080"
"""TelegramSettings.webhook_listen's default."""
TIMEOUT = 4.0
"""Seconds to wait for the answer (the Dockerfile gives the whole check 5 s)."""
_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def health_url(env: Mapping[str, str]) -> str:
    """The /healthz URL of the webhook server CONVO_WEBHOOK_LISTEN names (`HOST:PORT`, `:PORT` or the default)."""
    listen = env.get("CONVO_WEBHOOK_LISTEN", "").strip() or DEFAULT_LISTEN
    host, _, port = listen.rpartition(":")
    host = _LOOPBACK.get(host.strip("[]"), host.strip("[]"))
    return f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"


def problem(url: str, timeout: float = TIMEOUT) -> str | None:
    """None when `url` answers 200 with status ok; otherwise what went wrong, in one line."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.load(response)
    except (OSError, ValueError, http.client.HTTPException) as error:
        return f"{url}: {error}"
    if not isinstance(body, dict) or body.get("status") != "ok":
        return f"{url}: answered {body!r}"
    return None


def main() -> int:
    """Probe once; the exit status the container engine reads."""
    found = problem(health_url(environment()))
    if found is None:
        return 0
    print(f"unhealthy: {found}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
