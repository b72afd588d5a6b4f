"""Where the Fauna node is and how to reach it: endpoint parsing, and running driver calls off the event loop.

The driver is synchronous (`requests`); every call goes through `Connection.run`, which hands it to a small
dedicated thread pool and turns the driver's failures into the port's errors. Messages name the endpoint, never
the secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs
from pydantic import SecretStr
from requests.exceptions import ReadTimeout

from adapters.env_settings import EnvSettings, setting
from adapters.fauna.driver import errors, make_client
from domain.ports import StoreUnavailable

DEFAULT_ENDPOINT = "https://db.fauna.com"
SECRET_VARIABLES = ("FAUNA_SECRET", "FAUNA_SECRET_KEY")
CONTENDED_RETRIES = 3
"""How often a query Fauna reports as contended (409: nothing was written) is sent again."""
PASSED_THROUGH = frozenset({"transaction aborted", "instance not unique"})
"""Fauna error codes the store handles itself (they reach it as the driver's BadRequest)."""

Result = TypeVar("Result")


@attrs.frozen
class Endpoint:
    """A Fauna node's address, split the way `FaunaClient` takes it."""

    scheme: str
    """`http` or `https`."""
    domain: str
    """Host name or address."""
    port: int
    """TCP port."""

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """`scheme://host[:port]`; ValueError (without echoing credentials) for anything else."""
        parts = urlsplit(url.strip())
        if "@" in parts.netloc:
            raise ValueError("FAUNA_ENDPOINT must not contain credentials; put the secret in FAUNA_SECRET")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"FAUNA_ENDPOINT must look like https://db.example.com[:port], got {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"FAUNA_ENDPOINT must have no path or query, got {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"FAUNA_ENDPOINT has an invalid port: {url!r}") from None
        return cls(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))

    def __str__(self) -> str:
        return f"{self.scheme}://{self.domain}:{self.port}"


class FaunaSecret(EnvSettings):
    """The key the store authenticates with."""

    secret: SecretStr = setting(*SECRET_VARIABLES, unset="give the secret of a Fauna key for the bot's database")
    """FAUNA_SECRET, or the tutorial's FAUNA_SECRET_KEY."""


def secret_from_env(env: Mapping[str, str]) -> str:
    """The Fauna secret from FAUNA_SECRET (or the tutorial's FAUNA_SECRET_KEY); ConfigError (a ValueError) if neither
    is set."""
    return FaunaSecret.from_env(env).secret.get_secret_value()


class Connection:
    """One driver client and the threads that run its calls."""

    def __init__(self, secret: str, endpoint: Endpoint, *, timeout: float, workers: int) -> None:
        self.endpoint = endpoint
        self._client = make_client(secret, endpoint.scheme, endpoint.domain, endpoint.port, timeout, workers)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fauna")
        self._closed = False

    async def query(self, build: Callable[[], Any]) -> Any:
        """The answer to the FQL query `build()` returns (one transaction); failures become StoreUnavailable.

        The query is built on the pool too (a batch of a thousand events is a lot of expression objects), and sent
        from there. Fauna errors that callers handle themselves (`transaction aborted`, `instance not unique`) pass
        through as the driver's BadRequest.
        """
        return await self.run(lambda: self._client.query(build()))

    async def run(self, call: Callable[[], Result]) -> Result:
        """Run a blocking driver call on the pool, translating its failures."""
        if self._closed:
            raise StoreUnavailable("the Fauna store is closed")
        loop = asyncio.get_running_loop()
        for attempt in range(CONTENDED_RETRIES + 1):
            try:
                return await loop.run_in_executor(self._executor, call)
            except errors.ContendedTransaction:
                if attempt == CONTENDED_RETRIES:
                    raise StoreUnavailable(
                        f"Fauna at {self.endpoint} kept reporting the transaction as contended; nothing was written"
                    ) from None
                await asyncio.sleep(0.01 * 2**attempt)
            except errors.BadRequest as error:
                if error_code(error) in PASSED_THROUGH:
                    raise
                raise self._refused(error) from error
            except errors.Unauthorized:
                raise StoreUnavailable(
                    f"Fauna at {self.endpoint} rejected the secret (401 unauthorized): check FAUNA_SECRET"
                ) from None
            except errors.PermissionDenied:
                raise StoreUnavailable(
                    f"Fauna at {self.endpoint} denied the operation (403): the key's role may not do it"
                ) from None
            except errors.FaunaError as error:
                raise self._refused(error) from error
            except ReadTimeout:
                raise StoreUnavailable(
                    f"Fauna at {self.endpoint} did not answer in time; a write may or may not have been recorded "
                    "(an append is safe to retry with the same causation id)"
                ) from None
            except OSError as error:  # requests' connection errors are OSErrors
                raise StoreUnavailable(f"cannot reach Fauna at {self.endpoint} ({type(error).__name__})") from None
        raise AssertionError("unreachable")

    def _refused(self, error: Exception) -> StoreUnavailable:
        code = error_code(error)
        if code == "invalid ref":
            return StoreUnavailable(
                f"Fauna at {self.endpoint} has no event store schema ({error_description(error)}); "
                "run `convo store init`"
            )
        status = getattr(getattr(error, "request_result", None), "status_code", None)
        return StoreUnavailable(
            f"Fauna at {self.endpoint} refused the query ({status} {code}: {error_description(error)})"
        )

    async def close(self) -> None:
        """Close the HTTP connections and stop the threads (waiting for running calls, off the loop)."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        self._client.session.close()


def error_code(error: Exception) -> str:
    """The code of the first error Fauna reported (`transaction aborted`, ...), or '' if none."""
    found = getattr(error, "errors", None) or []
    return str(getattr(found[0], "code", "")) if found else ""


def error_description(error: Exception) -> str:
    """The description of the first error Fauna reported (an Abort's message), or the exception's text."""
    found = getattr(error, "errors", None) or []
    return str(getattr(found[0], "description", "")) if found else str(error)
