"""Evaluation of FQL v4 wire expressions: exactly the functions the Fauna event store sends, with Fauna's semantics.

A JSON object is a function call named by its keys (`{"paginate": ..., "size": ...}`), except `{"object": {...}}`
(an object whose values are expressions) and the `@` literal forms; arrays are evaluated item by item. Errors carry
the position of the failing expression as Fauna reports it: the path of keys and indexes from the query's root.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.doubles.fauna.database import Entry, Transaction
from tests.doubles.fauna.errors import QueryError
from tests.doubles.fauna.values import (
    SPECIAL_KEYS,
    Closure,
    Page,
    Ref,
    SetRef,
    Time,
    collection_ref,
    decode_literal,
    index_ref,
    same,
    sort_key,
)

DEFAULT_PAGE_SIZE = 64
MAX_PAGE_SIZE = 100_000

Path = list[Any]
Env = dict[str, Any]
Handler = Callable[["Evaluator", dict[str, Any], Env, Path], Any]

FUNCTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
"""Function name -> (required keys, optional keys)."""
HANDLERS: dict[str, Handler] = {}


def function(name: str, *required: str, optional: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Register the handler of the function whose call object has key `name` plus `required` (and `optional`)."""

    def register(handler: Handler) -> Handler:
        FUNCTIONS[name] = (frozenset((name, *required)), frozenset(optional))
        HANDLERS[name] = handler
        return handler

    return register


class Evaluator:
    """Evaluates one query inside one transaction."""

    def __init__(self, txn: Transaction) -> None:
        self.txn = txn

    def eval(self, expr: Any, env: Env, path: Path) -> Any:
        """The value of `expr`; QueryError located at the failing sub-expression."""
        if isinstance(expr, list):
            return [self.eval(item, env, [*path, at]) for at, item in enumerate(expr)]
        if not isinstance(expr, dict):
            return expr
        try:
            if len(expr) == 1:
                key = next(iter(expr))
                if key in SPECIAL_KEYS:
                    return decode_literal(key, expr[key])
                if key == "object":
                    return self._object(expr["object"], env, [*path, "object"])
            name = self._function_of(expr)
            return HANDLERS[name](self, expr, env, path)
        except QueryError as error:
            raise error.at(path) from None

    def arg(self, call: dict[str, Any], key: str, env: Env, path: Path) -> Any:
        """The evaluated argument `key` of a call."""
        return self.eval(call[key], env, [*path, key])

    def _object(self, fields: Any, env: Env, path: Path) -> dict[str, Any]:
        if not isinstance(fields, dict):
            raise QueryError("invalid expression", "Object expected.")
        return {name: self.eval(value, env, [*path, name]) for name, value in fields.items()}

    @staticmethod
    def _function_of(expr: dict[str, Any]) -> str:
        keys = set(expr)
        for name, (required, optional) in FUNCTIONS.items():
            if name in keys and required <= keys <= required | optional:
                return name
        listed = ", ".join(sorted(keys))
        raise QueryError("invalid expression", f"No form/function found, or invalid argument keys: {{ {listed} }}.")

    def apply(self, closure: Any, argument: Any, path: Path) -> Any:
        """Call a Lambda with one argument (an array is destructured over several parameters)."""
        if not isinstance(closure, Closure):
            raise QueryError("invalid argument", "Lambda expected.", path)
        if isinstance(closure.params, str):
            bound = {closure.params: argument}
        else:
            if not isinstance(argument, list) or len(argument) != len(closure.params):
                size = len(argument) if isinstance(argument, list) else 1
                raise QueryError(
                    "invalid argument",
                    f"Lambda expects an array with {len(closure.params)} elements. Array contains {size}.",
                    path,
                )
            bound = dict(zip(closure.params, argument, strict=True))
        return self.eval(closure.body, {**closure.env, **bound}, [*path, "expr"])


def _items(value: Any) -> list[Any]:
    if isinstance(value, Page):
        return value.data
    if isinstance(value, list):
        return value
    if isinstance(value, SetRef):
        raise QueryError("invalid argument", "Array or Page expected, Set provided.")
    raise QueryError("invalid argument", "Array or Page expected.")


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise QueryError("invalid argument", "Boolean expected.")
    return value


def _ref(value: Any) -> Ref:
    if not isinstance(value, Ref):
        raise QueryError("invalid argument", "Ref expected.")
    return value


def _params(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise QueryError("invalid argument", "Object expected.")
    return value


# Basic forms


@function("let", "in")
def _let(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    bindings = call["let"]
    scope = dict(env)
    pairs = bindings if isinstance(bindings, list) else [{name: value} for name, value in _params(bindings).items()]
    for at, binding in enumerate(pairs):
        if not isinstance(binding, dict) or len(binding) != 1:
            raise QueryError("invalid expression", "Let bindings must be single-entry objects.", [*path, "let", at])
        name, value = next(iter(binding.items()))
        scope[name] = ev.eval(value, scope, [*path, "let", at, name])
    return ev.eval(call["in"], scope, [*path, "in"])


@function("var")
def _var(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    name = call["var"]
    if not isinstance(name, str) or name not in env:
        raise QueryError("unbound variable", f"Unbound variable '{name}'")
    return env[name]


@function("if", "then", "else")
def _if(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    condition = ev.arg(call, "if", env, path)
    if not isinstance(condition, bool):
        raise QueryError("invalid argument", "Boolean expected.", [*path, "if"])
    branch = "then" if condition else "else"
    return ev.eval(call[branch], env, [*path, branch])


@function("do")
def _do(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    expressions = call["do"] if isinstance(call["do"], list) else [call["do"]]
    result = None
    for at, expression in enumerate(expressions):
        result = ev.eval(expression, env, [*path, "do", at])
    return result


@function("lambda", "expr")
def _lambda(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    params = call["lambda"]
    if isinstance(params, list) and all(isinstance(name, str) for name in params):
        return Closure(tuple(params), call["expr"], env, call)
    if isinstance(params, str):
        return Closure(params, call["expr"], env, call)
    raise QueryError(
        "invalid argument", "Lambda parameters must be a string or an array of strings.", [*path, "lambda"]
    )


@function("abort")
def _abort(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    message = ev.arg(call, "abort", env, path)
    if not isinstance(message, str):
        raise QueryError("invalid argument", "String expected.", [*path, "abort"])
    raise QueryError("transaction aborted", message, path)


# Collections


@function("map", "collection")
def _map(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    closure = ev.arg(call, "map", env, path)
    collection = ev.arg(call, "collection", env, path)
    results = [ev.apply(closure, item, [*path, "map"]) for item in _items(collection)]
    if isinstance(collection, Page):
        return Page(results, collection.before, collection.after)
    return results


@function("foreach", "collection")
def _foreach(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    closure = ev.arg(call, "foreach", env, path)
    collection = ev.arg(call, "collection", env, path)
    for item in _items(collection):
        ev.apply(closure, item, [*path, "foreach"])
    return collection


@function("is_empty")
def _is_empty(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    return not _items(ev.arg(call, "is_empty", env, path))


@function("is_nonempty")
def _is_nonempty(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    return bool(_items(ev.arg(call, "is_nonempty", env, path)))


@function("select", "from", optional=("default",))
def _select(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    steps = ev.arg(call, "select", env, path)
    value = ev.arg(call, "from", env, path)
    steps = steps if isinstance(steps, list) else [steps]
    for step in steps:
        found, value = _step(value, step)
        if found:
            continue
        if "default" in call:
            return ev.arg(call, "default", env, path)
        shown = ", ".join(str(item) for item in steps)
        raise QueryError("value not found", f"Value not found at path [{shown}].")
    return value


def _step(value: Any, step: Any) -> tuple[bool, Any]:
    """(True, the field or item `step` of value) or (False, None) when it has none."""
    if isinstance(value, Page):
        value = value.as_object()
    if isinstance(step, str) and isinstance(value, dict) and step in value:
        return True, value[step]
    is_index = isinstance(step, int) and not isinstance(step, bool)
    if is_index and isinstance(value, list) and 0 <= step < len(value):
        return True, value[step]
    return False, None


# Values


@function("equals")
def _equals(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    values = ev.arg(call, "equals", env, path)
    if not isinstance(values, list):
        return True
    return all(same(values[0], other) for other in values[1:])


@function("lt")
def _lt(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    """LT: each value below the next, compared as Fauna orders values (numbers, then strings, ...)."""
    values = ev.arg(call, "lt", env, path)
    values = values if isinstance(values, list) else [values]
    keys = [sort_key(value) for value in values]
    return all(left < right for left, right in itertools.pairwise(keys))


@function("add")
def _add(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    numbers = ev.arg(call, "add", env, path)
    numbers = numbers if isinstance(numbers, list) else [numbers]
    for at, number in enumerate(numbers):
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise QueryError("invalid argument", "Number expected.", [*path, "add", at])
    return sum(numbers)


@function("concat", optional=("separator",))
def _concat(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    strings = ev.arg(call, "concat", env, path)
    separator = ev.arg(call, "separator", env, path) if "separator" in call else ""
    strings = strings if isinstance(strings, list) else [strings]
    if not all(isinstance(item, str) for item in [*strings, separator]):
        raise QueryError("invalid argument", "String expected.", [*path, "concat"])
    return separator.join(strings)


@function("to_string")
def _to_string(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    value = ev.arg(call, "to_string", env, path)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float | str):
        return str(value)
    raise QueryError("invalid argument", "Cannot cast value to String.", [*path, "to_string"])


# Times

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECONDS = {
    "day": 86_400_000_000,
    "half day": 43_200_000_000,
    "hour": 3_600_000_000,
    "minute": 60_000_000,
    "second": 1_000_000,
    "millisecond": 1_000,
    "microsecond": 1,
}
"""Microseconds per unit TimeAdd and TimeDiff take on timestamps (singular or plural; nanoseconds apart)."""


@function("now")
def _now(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    """Now: the transaction's time, the same at every call within one query."""
    return Time(EPOCH + timedelta(microseconds=ev.txn.ts))


@function("time_add", "offset", "unit")
def _time_add(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    """TimeAdd: the timestamp `offset` (a whole number) units later."""
    base = _timestamp(ev.arg(call, "time_add", env, path), [*path, "time_add"])
    offset = ev.arg(call, "offset", env, path)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise QueryError("invalid argument", "Integer expected.", [*path, "offset"])
    unit, per_unit = _unit(ev.arg(call, "unit", env, path), [*path, "unit"])
    if unit == "nanosecond":
        if offset % 1000:
            raise QueryError("invalid argument", "The double keeps times to the microsecond.", [*path, "offset"])
        offset, per_unit = offset // 1000, 1
    return Time(base.moment + timedelta(microseconds=offset * per_unit))


@function("time_diff", "other", "unit")
def _time_diff(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    """TimeDiff: how many whole units from `time_diff` (start) to `other` (finish), negative when finish is
    earlier."""
    start = _timestamp(ev.arg(call, "time_diff", env, path), [*path, "time_diff"])
    finish = _timestamp(ev.arg(call, "other", env, path), [*path, "other"])
    unit, per_unit = _unit(ev.arg(call, "unit", env, path), [*path, "unit"])
    elapsed = (finish.moment - start.moment) // timedelta(microseconds=1)
    if unit == "nanosecond":
        return elapsed * 1000
    whole = abs(elapsed) // per_unit
    return whole if elapsed >= 0 else -whole


def _timestamp(value: Any, path: Path) -> Time:
    if not isinstance(value, Time):
        raise QueryError("invalid argument", "The double does this on timestamps only (Time expected).", path)
    return value


def _unit(value: Any, path: Path) -> tuple[str, int]:
    """The unit's singular name and its length in microseconds (1 for nanoseconds, which callers handle)."""
    name = value.removesuffix("s") if isinstance(value, str) else ""
    if name != "nanosecond" and name not in MICROSECONDS:
        raise QueryError("invalid argument", f"Invalid time unit {value!r}.", path)
    return name, MICROSECONDS.get(name, 1)


# Schema refs


@function("collection", optional=("scope",))
def _collection(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    return collection_ref(_schema_name(ev, call, "collection", env, path))


@function("index", optional=("scope",))
def _index(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    return index_ref(_schema_name(ev, call, "index", env, path))


def _schema_name(ev: Evaluator, call: dict[str, Any], key: str, env: Env, path: Path) -> str:
    if "scope" in call:
        raise QueryError("invalid argument", "The double has one database; scope is not supported.", [*path, "scope"])
    name = ev.arg(call, key, env, path)
    if not isinstance(name, str):
        raise QueryError("invalid argument", "String expected.", [*path, key])
    return name


@function("create_collection")
def _create_collection(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    return ev.txn.create_collection(_params(ev.arg(call, "create_collection", env, path)))


@function("create_index")
def _create_index(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    return ev.txn.create_index(_params(ev.arg(call, "create_index", env, path)))


# Documents


@function("exists", optional=("ts",))
def _exists(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    _no_ts(call, path)
    return ev.txn.exists(_ref(ev.arg(call, "exists", env, path)))


@function("get", optional=("ts",))
def _get(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    _no_ts(call, path)
    ref = _ref(ev.arg(call, "get", env, path))
    if ref.collection is not None and ref.collection.id == "indexes" and ref.collection.collection is None:
        return ev.txn.index_document(ref)
    return ev.txn.get(ref).as_object()


@function("create", "params")
def _create(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    target = _ref(ev.arg(call, "create", env, path))
    params = _params(ev.arg(call, "params", env, path))
    return ev.txn.create(target, params).as_object()


@function("update", "params")
def _update(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    ref = _ref(ev.arg(call, "update", env, path))
    params = _params(ev.arg(call, "params", env, path))
    return ev.txn.update(ref, params).as_object()


@function("delete")
def _delete(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    return ev.txn.delete(_ref(ev.arg(call, "delete", env, path))).as_object()


def _no_ts(call: dict[str, Any], path: Path) -> None:
    if "ts" in call:
        raise QueryError("invalid argument", "The double does not read at past timestamps.", [*path, "ts"])


# Sets


@function("match", optional=("terms",))
def _match(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    ref = _ref(ev.arg(call, "match", env, path))
    index = ev.txn.index(ref)
    if "terms" not in call:
        return SetRef(ref, None)
    terms = ev.arg(call, "terms", env, path)
    if len(index.terms) == 1:
        return SetRef(ref, (terms[0],) if isinstance(terms, list) and len(terms) == 1 else (terms,))
    return SetRef(ref, tuple(terms) if isinstance(terms, list) else (terms,))


@function("paginate", optional=("size", "after", "before", "ts", "events", "sources"))
def _paginate(ev: Evaluator, call: dict[str, Any], env: Env, path: Path) -> Any:
    for option in ("ts", "events", "sources"):
        if option in call:
            raise QueryError("invalid argument", f"The double does not implement Paginate's {option}.", [*path, option])
    source = ev.arg(call, "paginate", env, path)
    if not isinstance(source, SetRef):
        raise QueryError(
            "invalid argument", "Set expected (the double paginates Match sets only).", [*path, "paginate"]
        )
    size = ev.arg(call, "size", env, path) if "size" in call else DEFAULT_PAGE_SIZE
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_PAGE_SIZE:
        raise QueryError("invalid argument", f"Page size must be between 1 and {MAX_PAGE_SIZE}.", [*path, "size"])
    entries = ev.txn.entries(ev.txn.index(source.index), source.terms)
    if "before" in call:
        return _page_before(entries, ev.arg(call, "before", env, path), size)
    after = ev.arg(call, "after", env, path) if "after" in call else None
    return _page_after(entries, after, size)


def _cursor_key(cursor: Any) -> tuple[Any, ...]:
    items = cursor if isinstance(cursor, list) else [cursor]
    return tuple(sort_key(item) for item in items)


def _shown(entry: Entry) -> Any:
    values = entry[1]
    return values[0] if len(values) == 1 else list(values)


def _cursor(entry: Entry) -> list[Any]:
    return list(entry[1])


def _page_after(entries: list[Entry], cursor: Any, size: int) -> Page:
    """Entries from the cursor on (inclusive; the start when None): the next `size` of them."""
    start = 0 if cursor is None else bisect.bisect_left(entries, _cursor_key(cursor), key=lambda entry: entry[0])
    chosen = entries[start : start + size]
    page = Page([_shown(entry) for entry in chosen])
    if chosen and start > 0:
        page.before = _cursor(chosen[0])
    if start + size < len(entries):
        page.after = _cursor(entries[start + size])
    return page


def _page_before(entries: list[Entry], cursor: Any, size: int) -> Page:
    """Entries strictly before the cursor (all of them when None): the last `size` of them, in order."""
    end = (
        len(entries) if cursor is None else bisect.bisect_left(entries, _cursor_key(cursor), key=lambda entry: entry[0])
    )
    start = max(0, end - size)
    chosen = entries[start:end]
    page = Page([_shown(entry) for entry in chosen])
    if chosen and start > 0:
        page.before = _cursor(chosen[0])
    if end < len(entries):
        page.after = _cursor(entries[end])
    return page
