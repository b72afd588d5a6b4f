"""aiogram imported with its Bot API types built on first use (`adapters.telegram.lazy_types`): every type and every
method, and every method's `Response[...]`, still completes, and validates as eagerly built aiogram does."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHECK = textwrap.dedent(
    """
    import time
    started = time.perf_counter()
    import adapters.telegram  # imports aiogram lazily
    imported = time.perf_counter() - started
    import aiogram.methods as methods
    import aiogram.types as types
    from aiogram.client.session.base import Response
    from pydantic import BaseModel

    assert sum(not getattr(types, name).__pydantic_complete__ for name in types.__all__
               if isinstance(getattr(types, name), type) and issubclass(getattr(types, name), BaseModel)) > 100
    message = {"message_id": 5, "date": 1700000000, "chat": {"id": 7, "type": "private"}, "text": "sent"}
    sent = Response[methods.SendMessage.__returning__].model_validate({"ok": True, "result": message})
    assert sent.result.chat.id == 7  # what aiogram does with a sendMessage reply, before any type was built
    update = types.Update.model_validate({
        "update_id": 1,
        "message": {"message_id": 5, "date": 1700000000, "chat": {"id": 7, "type": "private"},
                    "from": {"id": 7, "is_bot": False, "first_name": "A"}, "text": "hi",
                    "entities": [{"type": "bold", "offset": 0, "length": 2}],
                    "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]},
    })
    assert update.message.text == "hi" and update.message.from_user.first_name == "A"
    failed = []
    for name in types.__all__:
        model = getattr(types, name)
        if isinstance(model, type) and issubclass(model, BaseModel) and model.model_rebuild() is False:
            failed.append(name)
    for name in methods.__all__:
        method = getattr(methods, name)
        if not (isinstance(method, type) and hasattr(method, "__returning__")) or method is methods.TelegramMethod:
            continue
        if method.model_rebuild() is False or Response[method.__returning__].model_rebuild() is False:
            failed.append(name)
    assert not failed, failed
    print(f"ok {imported:.2f}")
    """
)


def test_every_type_and_method_completes_on_first_use_with_aiogram_imported_lazily() -> None:
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")
