"""The one place that imports the `faunadb` (FQL v4) driver, and the client this project builds from it.

FQL v4 served by a self-hosted Fauna node is a deliberate choice of this project (Fauna's hosted service is gone;
its open-source core still speaks v4). The driver warns about v4's decommissioning when it is imported; that
warning is about Fauna's hosted service and says nothing we can act on, so it is silenced here, and only here,
for exactly that message. Everything else in the codebase (the store, the tests) takes the driver from this module.

Two things about the stock `FaunaClient` are changed, both for running without the public internet:
- it asks PyPI for a newer release every time it is constructed (a blocking request, and a hang where there is no
  route out); `check_new_version` is made a no-op;
- it sends requests with no timeout at all (its `timeout` argument is stored but never used); every request here
  gets a connect and a read timeout through the session's transport adapter.
"""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    # Importing `faunadb` warns "Fauna is decommissioning FQL v4 ...". We run FQL v4 on our own Fauna node on
    # purpose (see the module docstring), so this one warning is filtered while the driver loads.
    warnings.filterwarnings("ignore", message="Fauna is decommissioning FQL v4", category=DeprecationWarning)
    from faunadb import errors
    from faunadb import query as q
    from faunadb.client import FaunaClient
    from faunadb.objects import FaunaTime, Ref, SetRef

from requests.adapters import HTTPAdapter

__all__ = ["FaunaTime", "ProjectFaunaClient", "Ref", "SetRef", "errors", "make_client", "q"]


class _TimeoutAdapter(HTTPAdapter):
    """A connection-pooling transport that gives every request a (connect, read) timeout unless one is set."""

    def __init__(self, timeout: float, pool_size: int) -> None:
        super().__init__(pool_connections=1, pool_maxsize=pool_size)
        self._timeout = timeout

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, *args, **kwargs)


class ProjectFaunaClient(FaunaClient):  # type: ignore[misc]
    """`FaunaClient` that never phones PyPI and never waits forever on a request."""

    def check_new_version(self) -> None:
        """Do nothing: the stock client asks PyPI for newer releases on construction."""


def make_client(secret: str, scheme: str, domain: str, port: int, timeout: float, pool_size: int) -> Any:
    """A driver client for one Fauna endpoint. Builds a `requests` session; performs no I/O."""
    client = ProjectFaunaClient(
        secret=secret,
        scheme=scheme,
        domain=domain,
        port=port,
        timeout=timeout,
        pool_connections=1,
        pool_maxsize=pool_size,
    )
    transport = _TimeoutAdapter(timeout, pool_size)
    client.session.mount("http://", transport)
    client.session.mount("https://", transport)
    return client
