"""The pages of `convo inspect`, rendered on the server as plain HTML: the stream list, a stream's timeline and the
answer to "ask again with…". Every text from the log is escaped; pages hold no script."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC
from decimal import Decimal
from html import escape
from urllib.parse import quote, urlencode

import attrs

from domain.codec import event_to_document
from domain.conversation import State
from domain.events import (
    AnswerFailed,
    AnswerGiven,
    DeliveryFailed,
    ImageFailed,
    RecordedEvent,
    TranscriptionFailed,
)
from domain.prices import PriceTable, usd
from domain.prompt import Message
from domain.usage import billed_by, cost
from entrypoints.replay import safe, state_summary, summary, utc_seconds
from service.inspection import TimelinePage
from service.replay import PromptRecord, Step
from service.stream_list import StreamRow
from service.what_if import Alternative, Answer

FAILURES = (AnswerFailed, ImageFailed, TranscriptionFailed, DeliveryFailed)
"""Events shown as failures."""
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#24292f;color:#fff;padding:.6em 1.2em}header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:1em 1.2em}table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.35em .5em;border-bottom:1px solid #ddd}
th{background:#eee;position:sticky;top:0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failure{background:#ffe3e3}tr.failure td.type{color:#b00020;font-weight:700}
tr.undone{opacity:.6}tr.undone td.data{text-decoration:line-through}
tr.at{outline:3px solid #0969da}.badge{display:inline-block;padding:0 .45em;border-radius:.6em;font-size:12px}
.verified{background:#dafbe1;color:#116329}.differs{background:#ffe3e3;color:#b00020}
.unrecorded{background:#eee;color:#555}.undone-badge{background:#fff1c2;color:#7a5300}
pre{white-space:pre-wrap;word-break:break-word;margin:.2em 0;font:12.5px/1.4 ui-monospace,monospace}
.prompt{border:1px solid #ccc;border-radius:6px;padding:.5em .7em;margin:.4em 0;background:#fff}
.prompt.failed,.prompt.check-differs{border-color:#b00020}
.msg{border-left:3px solid #ccc;padding-left:.5em;margin:.3em 0}.msg.system{border-color:#8250df}
.msg.user{border-color:#0969da}.msg.assistant{border-color:#1a7f37}
.role{font-weight:600;font-size:12px;text-transform:uppercase;color:#555}
.diff .added{background:#dafbe1}.diff .dropped{background:#ffe3e3}
nav.pager a{margin-right:1em}form.inline{display:inline}input[type=text]{width:18em}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:1em}.muted{color:#666}
"""


def layout(title: str, body: str) -> str:
    """A whole page around its body."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{escape(title)} · convo inspect</title>'
        '<link rel="stylesheet" href="/style.css"></head>'
        f'<body><header><a href="/">convo inspect</a> <span class="muted">read only</span></header>'
        f"<main>{body}</main></body></html>"
    )


def stream_href(stream: str, **query: int | str | None) -> str:
    """The link to a stream's timeline (query parameters that are None are left out)."""
    params = urlencode({key: value for key, value in query.items() if value is not None})
    return f"/streams/{_segment(stream)}" + (f"?{params}" if params else "")


def _segment(stream: str) -> str:
    """A stream id as one path segment (`.` and `..` escaped too, or a browser would climb the path)."""
    quoted = quote(stream, safe="")
    return quoted.replace(".", "%2E") if set(stream) <= {"."} else quoted


# --------------------------------------------------------------------------------------------------- the list


def stream_list(rows: Sequence[StreamRow], matched: int, query: str, offset: int, limit: int) -> str:
    """The stream list: a search box, then one row per stream with its size, activity, tokens and cost."""
    search = (
        '<form method="get" action="/"><input type="text" name="q" placeholder="id, @username or name" '
        f'value="{escape(query)}" aria-label="search"> <button>search</button></form>'
    )
    if not rows:
        found = "no stream matches" if query else "no streams: the store holds no events"
        return layout("streams", f"{search}<p>{escape(found)}</p>")
    head = (
        "<tr><th>stream</th><th>user</th><th>name</th><th class=num>events</th><th>last activity (UTC)</th>"
        "<th class=num>tokens</th><th class=num>cost (USD)</th></tr>"
    )
    body = "".join(_stream_row(row) for row in rows)
    shown = f"<p>{matched} stream(s){' matching ' + escape(repr(query)) if query else ''}; "
    shown += f"{offset + 1}–{offset + len(rows)} shown</p>"
    pager = _list_pager(matched, query, offset, limit)
    return layout("streams", f"{search}{shown}<table id=streams>{head}{body}</table>{pager}")


def _stream_row(row: StreamRow) -> str:
    item = row.summary
    user = "—" if item.username is None else "@" + item.username
    if item.user_id is not None:
        user += f" ({item.user_id})"
    return (
        f'<tr><td><a href="{escape(stream_href(item.stream))}">{escape(item.stream)}</a></td>'
        f"<td>{escape(safe(user))}</td><td>{escape(safe(item.first_name or '—'))}</td>"
        f"<td class=num>{item.events:,}</td>"
        f"<td>{utc_seconds(item.last_event_at)}</td><td class=num>{row.tokens:,}</td>"
        f"<td class=num>{usd(row.cost)}</td></tr>"
    )


def _list_pager(matched: int, query: str, offset: int, limit: int) -> str:
    links = []
    if offset > 0:
        links.append(f'<a href="/?{urlencode({"q": query, "offset": max(0, offset - limit)})}">previous</a>')
    if offset + limit < matched:
        links.append(f'<a href="/?{urlencode({"q": query, "offset": offset + limit})}">next</a>')
    return f'<nav class="pager">{"".join(links)}</nav>'


# --------------------------------------------------------------------------------------------------- timeline


def timeline(page: TimelinePage, prices: PriceTable, size: int, highlight: int | None) -> str:
    """A stream's timeline: a window of events, the state after each, each answer's prompt, diff and usage."""
    head = _timeline_head(page)
    rows = "".join(_step_rows(step, page, prices, highlight) for step in page.steps)
    table = (
        "<table id=timeline><tr><th class=num>v</th><th>time (UTC)</th><th>type</th><th>data</th>"
        f"<th>state after</th></tr>{rows}</table>"
    )
    pager = _timeline_pager(page, size)
    return layout(f"stream {page.stream}", f"{head}{pager}{table}{pager}")


def _timeline_head(page: TimelinePage) -> str:
    viewed = (
        f"as it stood at version {page.at} of {page.newest_version} "
        f'(<a href="{escape(stream_href(page.stream))}">see it now</a>)'
        if page.at < page.newest_version
        else f"{page.newest_version:,} events"
    )
    goto = (
        f'<form class="inline" method="get" action="{escape(stream_href(page.stream))}">'
        f'<label>view at version <input type="number" name="at" min="1" max="{page.newest_version}" '
        f'value="{page.at}"></label> <button>go</button></form>'
    )
    return f"<h1>stream {escape(page.stream)}</h1><p>{viewed}; events {page.first}–{page.last} shown. {goto}</p>"


def _timeline_pager(page: TimelinePage, size: int) -> str:
    links = []
    if page.first > 1:
        links.append(f'<a href="{escape(stream_href(page.stream, at=page.at, last=page.first - 1))}">← older</a>')
    if page.last < page.at:
        newer = min(page.at, page.last + size)
        links.append(f'<a href="{escape(stream_href(page.stream, at=page.at, last=newer))}">newer →</a>')
        links.append(f'<a href="{escape(stream_href(page.stream, at=page.at))}">newest</a>')
    return f'<nav class="pager">{"".join(links)}</nav>'


def _step_rows(step: Step, page: TimelinePage, prices: PriceTable, highlight: int | None) -> str:
    recorded = step.recorded
    version = recorded.version
    classes = [
        name
        for name, on in (
            ("failure", isinstance(recorded.event, FAILURES)),
            ("undone", step.undone is not None),
            ("at", version == highlight),
        )
        if on
    ]
    link = escape(stream_href(page.stream, at=version))
    data = escape(summary(recorded.event))
    if step.undone is not None:
        marked = "undone" if step.undone == "undo" else f"superseded ({step.undone})"
        data = f'<span class="badge undone-badge">{marked}</span> {data}'
    usage = _usage(recorded, prices)
    document = json.dumps(event_to_document(recorded.event)["data"], ensure_ascii=False, indent=1)
    details = (
        f"<details><summary>data</summary><pre>{escape(document)}</pre>"
        f"<p class=muted>causation {escape(recorded.causation_id)}</p></details>"
    )
    prompt = "" if step.prompt is None else _prompt_block(step.prompt, page.stream)
    return (
        f'<tr id="v{version}" class="{" ".join(classes)}"><td class=num><a href="{link}">{version}</a></td>'
        f"<td>{_time(recorded)}</td><td class=type>{type(recorded.event).__name__}</td>"
        f"<td class=data>{data}{usage}{details}{prompt}</td><td>{_state(step.state)}</td></tr>"
    )


def _time(recorded: RecordedEvent) -> str:
    return recorded.recorded_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _usage(recorded: RecordedEvent, prices: PriceTable) -> str:
    """Model, tokens, cost and latency of an outcome (nothing for other events)."""
    event = recorded.event
    if not isinstance(event, AnswerGiven | AnswerFailed):
        return ""
    tokens = (
        f"{event.prompt_tokens:,} prompt + {event.completion_tokens:,} completion tokens"
        if event.prompt_tokens
        else "tokens unknown (the server reported no usage)"
    )
    latency = f" · {event.latency_ms:,} ms" if isinstance(event, AnswerGiven) else ""
    spent = usd(cost(billed_by(event), prices))
    return f'<p class="usage">model <b>{escape(event.model or "—")}</b> · {tokens} · {spent} USD{latency}</p>'


def _state(state: State) -> str:
    fields = attrs.asdict(state, recurse=False)
    shown = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(_field(value))}</td></tr>" for name, value in fields.items()
    )
    return f"{escape(state_summary(state))}<details><summary>state</summary><table>{shown}</table></details>"


def _field(value: object) -> str:
    if attrs.has(type(value)):
        return json.dumps(attrs.asdict(value), ensure_ascii=False, default=str)  # type: ignore[arg-type]
    return "—" if value is None else str(value)


def _prompt_block(record: PromptRecord, stream: str) -> str:
    """The prompt a question was sent, checked against its digest, and the diff to the previous prompt."""
    outcome = f"failed: {escape(record.failed)}" if record.failed else "answered"
    classes = " ".join(["prompt", *(["failed"] if record.failed else []), f"check-{record.verification}"])
    if record.error is not None:
        body = f"<p>not built: {escape(record.error)}</p>"
    else:
        badge = f'<span class="badge {record.verification}">{_VERIFIED[record.verification]}</span>'
        counts = f"{len(record.messages)} messages · {record.tokens:,}/{record.budget:,} tokens"
        body = (
            f"<p>{badge} {counts}</p><details open><summary>the exact prompt sent</summary>"
            f"{_messages(record.messages)}</details>{_diff(record)}{_ask_form(record, stream)}"
        )
    return f'<div class="{classes}"><b>prompt for v{record.question_version}</b> ({outcome}){body}</div>'


_VERIFIED = {
    "verified": "verified against the digest sent",
    "differs": "differs from the digest sent",
    "unrecorded": "unverified: no digest recorded",
}


def _messages(messages: Iterable[Message]) -> str:
    return "".join(_message(message, "") for message in messages)


def _message(message: Message, extra: str) -> str:
    pictures = "".join(
        f"<p class=muted>[picture {image.photo.width}×{image.photo.height} sha256:{escape(image.photo.sha256[:12])}]"
        "</p>"
        for image in message.images
    )
    return (
        f'<div class="msg {message.role} {extra}"><span class="role">{message.role}</span>{pictures}'
        f"<pre>{escape(message.content)}</pre></div>"
    )


def _diff(record: PromptRecord) -> str:
    """What changed since the previous prompt: dropped messages, then added ones."""
    if not record.dropped and record.added == record.messages:
        return '<div class="diff"><b>diff</b>: no previous prompt; every message is new</div>'
    if not record.dropped and not record.added:
        return '<div class="diff"><b>diff</b>: the same as the previous prompt</div>'
    persona = " (the persona changed)" if record.persona_changed else ""
    lines = [_message(message, "dropped") for message in record.dropped]
    lines += [_message(message, "added") for message in record.added]
    counts = f"{len(record.dropped)} dropped, {len(record.added)} added"
    summary_line = f"<summary>diff to the previous prompt: {counts}{persona}</summary>"
    return f'<details class="diff" open>{summary_line}{"".join(lines)}</details>'


def _ask_form(record: PromptRecord, stream: str) -> str:
    """ "Ask again with…": the question put to the model again under other settings (nothing is recorded)."""
    action = f"/streams/{_segment(stream)}/ask"
    return (
        f'<details class="ask"><summary>ask again with…</summary><form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="question" value="{record.question_version}">'
        '<label>persona <input type="text" name="persona" placeholder="a preset name or a system prompt"></label> '
        '<label>model <input type="text" name="model" placeholder="as recorded"></label> '
        '<label>budget <input type="number" name="budget" min="1" placeholder="as recorded"></label> '
        "<button>ask again</button> <span class=muted>the log is not written</span></form></details>"
    )


# --------------------------------------------------------------------------------------------------- ask again


def ask_again_page(stream: str, alternative: Alternative, old: Answer, new: Answer, change: str) -> str:
    """The recorded answer and the new one side by side, with the prompts they were given."""
    back = escape(stream_href(stream, at=alternative.outcome.version)) + f"#v{alternative.outcome.version}"
    dropped = ", ".join(f"v{version}" for version in alternative.dropped_turns) or "none"
    added = ", ".join(f"v{version}" for version in alternative.added_turns) or "none"
    head = (
        f'<h1>v{alternative.question_version} asked again</h1><p><a href="{back}">back to the timeline</a> · '
        f"with {escape(change)} · turns dropped: {dropped}; added: {added} · nothing was recorded</p>"
    )
    sides = (
        f'<div class="sides"><section id="old"><h2>recorded</h2>{_answer(old)}'
        f"<p>{alternative.old.tokens:,}/{alternative.old.budget:,} prompt tokens</p>"
        f"{_messages(alternative.old.messages)}"
        f'</section><section id="new"><h2>again</h2>{_answer(new)}'
        f"<p>{alternative.new_tokens:,}/{alternative.new_budget:,} prompt tokens</p>"
        f"{_messages(alternative.new_messages)}</section></div>"
    )
    return layout(f"v{alternative.question_version} asked again", head + sides)


def _answer(answer: Answer) -> str:
    if answer.failure:
        return f'<p class="failure"><b>{escape(answer.failure)}</b></p>'
    usage = (
        f"{answer.prompt_tokens:,} + {answer.completion_tokens:,} tokens" if answer.prompt_tokens else "tokens unknown"
    )
    spent = usd(answer.cost) if isinstance(answer.cost, Decimal) else answer.cost
    return (
        f"<p>model <b>{escape(answer.model)}</b> · {usage} · {answer.latency_ms:,} ms · {spent} USD</p>"
        f'<div class="msg assistant"><pre>{escape(answer.text)}</pre></div>'
    )


def message_page(title: str, text: str, status_hint: str = "") -> str:
    """A page that says one thing (an error, a refusal)."""
    hint = f"<p class=muted>{escape(status_hint)}</p>" if status_hint else ""
    return layout(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{hint}")
