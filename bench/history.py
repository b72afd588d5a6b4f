"""History length: the cost of handling one message as the user's stream grows, convo against the tutorial baseline.

    python -m bench.history [--sizes 10,1000,100000] [--stores sqlite,postgres] [--repeats 7] [--messages 50]

For each store and stream size N, one stream per system and repeat is pre-filled with N valid events (made by the
real decider, written in bulk with `import_recorded`), then M messages are handled one after another and each is
timed: (a) convo's real path, `ConversationService.ask`, which reads only the stream's tail; (b) the tutorial
baseline (`bench.baseline.TutorialBaseline`), which reads and folds the whole stream. The model is excluded: both
get an answer instantly, so a message costs load + fold + two appends (plus convo's prompt read).

Printed per store and size: the median and p90 per message in ms (medians over the repeats of each run's median
and p90), convo(N)/convo(smallest N) and baseline(N)/convo(N). Target: convo at 100,000 events within 1.5x of
convo at 10. A missed target is reported, never an error; the exit status is non-zero only when something failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import attrs
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from adapters.postgres.store import PostgresEventStore
from adapters.sqlite.store import SqliteEventStore
from bench.baseline import TutorialBaseline
from domain.commands import Ask, Command, GiveAnswer, Sender
from domain.conversation import INITIAL, State, decide, evolve
from domain.events import PromptSettingsRecorded, RecordedEvent
from domain.ports import Completion, EventStore, ModelFailure, Picture, StopSignal, TextSoFar
from domain.prompt import Message, PromptPolicy
from service.conversations import ConversationService, Request

TARGET = 1.5
"""Most convo(100,000 events) may cost relative to convo(10 events)."""

IMPORT_BATCH = 5_000
"""Events per `import_recorded` call while pre-filling."""

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
"""Where scratch PostgreSQL databases are created (override with CONVO_BENCH_POSTGRES)."""

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
SENDER = Sender(user_id=7, username="bench", first_name="Bench", language_code="en")
QUESTION = "How does the event store keep a conversation consistent when two workers answer at once? #{n}"
ANSWER = (
    "Each append states the version it read; if another worker appended first the database refuses the batch, "
    "nothing is written, and the service reads the tail again and decides again. The unique causation key means a "
    "redelivered update never writes twice, so every worker sees one ordered log. #{n}"
)
SYSTEMS = ("convo", "baseline")
MIN_MESSAGES = 3
"""Fewest messages a run times, whatever its time budget."""


class InstantChat:
    """A ChatModel that answers at once, so timings hold the store and the fold and nothing of a model."""

    name = "instant"

    async def answer(
        self,
        prompt: Sequence[Message],
        on_text: TextSoFar | None = None,
        stop: StopSignal | None = None,
        model: str | None = None,
    ) -> Completion:
        """A fixed short answer."""
        return Completion("ok", self.name, 0, 0)

    async def close(self) -> None:
        """Nothing to release."""


class NoImages:
    """An ImageModel that is never asked (the benchmark only asks questions)."""

    name = "none"

    async def draw(self, prompt: str) -> Picture:
        """Always fails: no picture is ever wanted here."""
        raise ModelFailure("upstream", "the benchmark draws nothing")

    async def close(self) -> None:
        """Nothing to release."""


@attrs.frozen
class Options:
    """What one run measures."""

    sizes: tuple[int, ...]
    stores: tuple[str, ...]
    repeats: int
    messages: int
    postgres: str
    baseline_seconds: float


@attrs.frozen
class Cell:
    """One system at one store and size: per-message milliseconds, medians over the repeats."""

    median: float
    p90: float
    runs: int
    messages: int


# --- pre-filling ------------------------------------------------------------------------------------------------


def seed_events(
    stream: str, size: int, sender: Sender = SENDER, shaping: PromptSettingsRecorded | None = None
) -> list[RecordedEvent]:
    """At least `size` events (at most two more) of a realistic chat, each decided and folded by the real domain.

    Question and answer turns, as a store would record them (versions 1.., one causation id per batch); the
    decider adds the registration and the periodic mode restatements itself. The stream ends with no request
    pending. With `shaping`, each question records those prompt settings as the service does.
    """
    state, recorded = INITIAL, list[RecordedEvent]()
    turn = 0
    while len(recorded) < size:
        asked = Ask(sender=sender, text=QUESTION.format(n=turn), shaping=shaping)
        state = _record(state, recorded, stream, asked, f"seed:{turn}")
        pending = state.pending
        assert pending is not None
        answer = GiveAnswer(
            question_version=pending.version,
            text=ANSWER.format(n=turn),
            model="seed",
            prompt_tokens=20,
            completion_tokens=60,
            latency_ms=900,
        )
        state = _record(state, recorded, stream, answer, f"seed:{turn}/outcome")
        turn += 1
    return recorded


def _record(state: State, into: list[RecordedEvent], stream: str, command: Command, causation: str) -> State:
    """Decide one command and append its events to `into`; the state after them."""
    for event in decide(state, command):
        version = state.version + 1
        recorded = RecordedEvent(
            stream=stream,
            version=version,
            recorded_at=EPOCH + timedelta(seconds=version),
            causation_id=causation,
            event=event,
        )
        into.append(recorded)
        state = evolve(state, recorded)
    return state


async def prefill(store: EventStore, stream: str, size: int) -> int:
    """Write a seeded stream of about `size` events in big `import_recorded` batches; how many were written."""
    events = seed_events(stream, size)
    for start in range(0, len(events), IMPORT_BATCH):
        await store.import_recorded(events[start : start + IMPORT_BATCH])
    return len(events)


# --- stores -----------------------------------------------------------------------------------------------------


@asynccontextmanager
async def open_store(kind: str, admin_url: str) -> AsyncIterator[EventStore]:
    """A fresh, empty store of one kind (`sqlite` or `postgres`), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="convo-bench-") as folder:
            sqlite = SqliteEventStore(os.path.join(folder, "bench.db"))
            async with _closing(sqlite):
                yield sqlite
    elif kind == "postgres":
        with scratch_database(admin_url) as conninfo:
            postgres = PostgresEventStore(conninfo)
            async with _closing(postgres):
                yield postgres
    else:
        raise ValueError(f"unknown store {kind!r}; use sqlite or postgres")


@asynccontextmanager
async def _closing(store: EventStore) -> AsyncIterator[None]:
    """Create the store's schema; close the store on the way out."""
    try:
        await store.init_schema()
        yield
    finally:
        await store.close()


class scratch_database:
    """A PostgreSQL database `convo_bench_<random>` for one run, dropped on exit; enters as its conninfo."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"convo_bench_{secrets.token_hex(4)}"

    def __enter__(self) -> str:
        self._execute("CREATE DATABASE {}")
        return make_conninfo(self.admin_url, dbname=self.name)

    def __exit__(self, *exc: object) -> None:
        self._execute("DROP DATABASE IF EXISTS {} WITH (FORCE)")

    def _execute(self, statement: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL(statement).format(sql.Identifier(self.name)))


# --- timing -----------------------------------------------------------------------------------------------------

Handler = Callable[[str, int], Awaitable[object]]
"""Handles message number i of a stream."""


def convo_handler(store: EventStore) -> Handler:
    """convo's real path: `ConversationService.ask` with an instant model."""
    service = ConversationService(store, InstantChat(), NoImages(), PromptPolicy())

    def handle(stream: str, index: int) -> Awaitable[object]:
        request = Request(stream, f"bench:{index}", SENDER)
        return service.ask(request, QUESTION.format(n=f"bench {index}"))

    return handle


def baseline_handler(store: EventStore) -> Handler:
    """The tutorial baseline without a model."""
    baseline = TutorialBaseline(store, None, PromptPolicy())

    def handle(stream: str, index: int) -> Awaitable[object]:
        return baseline.handle_text(stream, SENDER, QUESTION.format(n=f"bench {index}"), f"bench:{index}")

    return handle


HANDLERS: dict[str, Callable[[EventStore], Handler]] = {"convo": convo_handler, "baseline": baseline_handler}


async def time_messages(handle: Handler, stream: str, messages: int, budget: float | None = None) -> list[float]:
    """Milliseconds each of `messages` messages took, after one untimed warm-up message.

    With a `budget` (seconds), stops early once it is spent and at least MIN_MESSAGES were timed: the baseline
    takes seconds per message on a long stream.
    """
    await handle(stream, 0)
    timings: list[float] = []
    deadline = None if budget is None else time.perf_counter() + budget
    for index in range(1, messages + 1):
        started = time.perf_counter()
        await handle(stream, index)
        timings.append((time.perf_counter() - started) * 1000)
        if deadline is not None and started > deadline and len(timings) >= MIN_MESSAGES:
            break
    return timings


def p90(values: Sequence[float]) -> float:
    """The 90th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 9 // 10) - 1)]


async def measure_store(kind: str, options: Options, log: Callable[[str], None]) -> dict[tuple[str, int], Cell]:
    """Every system at every size on one kind of store: a fresh stream per system, size and repeat."""
    runs: dict[tuple[str, int], list[list[float]]] = {}
    async with open_store(kind, options.postgres) as store:
        for size in options.sizes:
            for repeat in range(options.repeats):
                for system in SYSTEMS:
                    stream = f"{system}-{size}-{repeat}"
                    started = time.perf_counter()
                    written = await prefill(store, stream, size)
                    filled = time.perf_counter() - started
                    budget = options.baseline_seconds if system == "baseline" else None
                    timings = await time_messages(HANDLERS[system](store), stream, options.messages, budget)
                    runs.setdefault((system, size), []).append(timings)
                    log(
                        f"{kind} {system} N={size} run {repeat + 1}/{options.repeats}: prefilled {written} events "
                        f"in {filled:.1f}s, median {statistics.median(timings):.2f} ms"
                    )
    return {key: _cell(timings) for key, timings in runs.items()}


def _cell(runs: list[list[float]]) -> Cell:
    """Medians over the runs of each run's median and p90."""
    return Cell(
        statistics.median(statistics.median(run) for run in runs),
        statistics.median(p90(run) for run in runs),
        len(runs),
        min(len(run) for run in runs),
    )


# --- report -----------------------------------------------------------------------------------------------------


def table(kind: str, sizes: Sequence[int], cells: dict[tuple[str, int], Cell]) -> Iterator[str]:
    """The result lines of one store: a row per size."""
    reference = cells["convo", sizes[0]].median
    yield (
        f"{'store':<9}{'events':>8} | {'convo ms':>9}{'p90':>8}{'/conv(' + str(sizes[0]) + ')':>12} | "
        f"{'baseline ms':>12}{'p90':>9}{'base/convo':>11}{'msgs':>6}"
    )
    yield "-" * 86
    for size in sizes:
        convo, base = cells["convo", size], cells["baseline", size]
        yield (
            f"{kind:<9}{size:>8} | {convo.median:>9.2f}{convo.p90:>8.2f}{convo.median / reference:>11.2f}x | "
            f"{base.median:>12.2f}{base.p90:>9.2f}{base.median / convo.median:>10.1f}x{base.messages:>6}"
        )


def verdict(kind: str, sizes: Sequence[int], cells: dict[tuple[str, int], Cell]) -> str:
    """Whether convo at the largest size stays within TARGET of convo at the smallest."""
    smallest, largest = sizes[0], sizes[-1]
    ratio = cells["convo", largest].median / cells["convo", smallest].median
    met = "target met" if ratio <= TARGET else "target MISSED"
    return f"{kind}: convo({largest})/convo({smallest}) = {ratio:.2f}x (target <= {TARGET}x): {met}"


def header(options: Options) -> Iterator[str]:
    """The lines that open the report: what was measured."""
    yield ""
    yield (
        f"history benchmark: {options.messages} messages per run ('msgs': fewest a baseline run timed within "
        f"{options.baseline_seconds:g}s), {options.repeats} runs, model excluded"
    )
    yield "ms per message: medians over the runs of each run's median and p90"


# --- command line -----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Options:
    """Options from the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,100000", help="stream sizes, comma-separated")
    parser.add_argument("--stores", default="sqlite,postgres", help="sqlite and/or postgres, comma-separated")
    parser.add_argument("--repeats", type=int, default=7, help="runs per store, size and system")
    parser.add_argument("--messages", type=int, default=50, help="timed messages per run")
    parser.add_argument(
        "--baseline-seconds", type=float, default=10.0, help="time budget of one baseline run (at least 3 messages)"
    )
    parser.add_argument("--postgres", default=os.environ.get("CONVO_BENCH_POSTGRES", ADMIN_URL), help="admin URL")
    args = parser.parse_args(argv)
    sizes = tuple(sorted(int(size) for size in args.sizes.split(",")))
    stores = tuple(kind.strip() for kind in args.stores.split(","))
    if min(sizes) < 1 or args.repeats < 1 or args.messages < 1:
        parser.error("sizes, repeats and messages must be 1 or more")
    return Options(sizes, stores, args.repeats, args.messages, args.postgres, args.baseline_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a table per store as soon as it is measured; 0 unless something failed.

    A missed target is not a failure.
    """
    options = parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    print("\n".join(header(options)), flush=True)
    verdicts = []
    for kind in options.stores:
        cells = asyncio.run(measure_store(kind, options, log))
        print("\n" + "\n".join(table(kind, options.sizes, cells)), flush=True)
        verdicts.append(verdict(kind, options.sizes, cells))
    print("\n" + "\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
