"""Importing aiogram without building every Bot API type up front.

`aiogram.types` ends by calling `model_rebuild` on all of its ~440 pydantic models, which builds a validator for
every type of the Bot API: about 80% of `convo bot`'s start-up (2-5 s on our 2-core machines, `python -X
importtime`). Here that loop is skipped while aiogram is imported, and each aiogram model that is not yet complete
is given the namespace the loop would have used (`__pydantic_parent_namespace__`; complete ones too, for the
generic models aiogram parametrises later, such as `Response[Message]`, inherit it), so pydantic completes each
by itself the first time it validates or serialises one: only the types the bot meets are built (an Update, a
Message, the methods it calls), each once, with the same forward references resolved as aiogram resolves them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel


def import_aiogram() -> None:
    """Import aiogram with its types' validators built on first use (no effect once aiogram is imported)."""
    if "aiogram.types" in sys.modules:
        return
    namespaces: list[dict[str, Any]] = []
    eager = BaseModel.__dict__["model_rebuild"]

    def deferred(cls: type[BaseModel], *args: object, _types_namespace: Any = None, **kwargs: object) -> None:
        if _types_namespace is not None:
            namespaces.append(dict(_types_namespace))

    BaseModel.model_rebuild = classmethod(deferred)  # type: ignore[assignment, method-assign, arg-type]
    try:
        import aiogram
        import aiogram.methods
    finally:
        BaseModel.model_rebuild = eager  # type: ignore[method-assign]
    if not namespaces:  # an aiogram that no longer rebuilds its types at import: nothing was deferred
        return
    namespace = namespaces[0]
    for model in _subclasses(BaseModel):
        if model.__module__.startswith("aiogram"):  # complete ones too: their generic subclasses inherit it
            model.__pydantic_parent_namespace__ = {**(model.__pydantic_parent_namespace__ or {}), **namespace}
    del aiogram


def _subclasses(base: type[BaseModel]) -> Iterator[type[BaseModel]]:
    for sub in base.__subclasses__():
        yield sub
        yield from _subclasses(sub)
