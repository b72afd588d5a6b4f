"""Sees each fold property fail against a deliberately broken fold (run by hand: python -m tests.mutations...).

Each mutation patches one line of the domain, runs the property that should catch it, and restores the file.
Prints one line per mutation; exits 1 if any mutation survived.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

MUTATIONS = [
    (
        "domain/tail.py",
        "        if self._shaping is None and isinstance(event, PromptSettingsRecorded):",
        "        if False:",
        "test_tail_read_state_equals_full_fold_state",
    ),
    (
        "domain/conversation.py",
        "    if state.shaping is not None and state.shaping_version <= far and not changed:",
        "    if False:",
        "test_a_setting_far_back_is_restated_and_found_by_a_short_tail_read",
    ),
    (
        "domain/conversation.py",
        "    if shaping is None or shaping.same_as(state.shaping):",
        "    if True:",
        "test_a_setting_far_back_is_restated_and_found_by_a_short_tail_read",
    ),
    (
        "domain/tail.py",
        "        if self._voice is None and isinstance(event, VoiceRepliesSelected):",
        "        if False:",
        "test_tail_read_state_equals_full_fold_state",
    ),
    (
        "domain/conversation.py",
        "    if state.voice_replies_version <= far:",
        "    if False:",
        "test_a_setting_far_back_is_restated_and_found_by_a_short_tail_read",
    ),
    (
        "domain/tail.py",
        "        self._photos = question.event.photos",
        "        self._photos = ()",
        "test_tail_read_prompt_equals_full_fold_prompt",
    ),
    (
        "domain/prompt.py",
        "        self._left -= 1",
        "        pass",
        "test_only_the_newest_turns_with_pictures_send_them",
    ),
    (
        "domain/prompt.py",
        '    return "".join(document_block(file) + "\\n\\n" for file in question.files) + said',
        "    return said",
        "test_documents_reach_the_prompt_ahead_of_the_question",
    ),
    (
        "domain/prompt.py",
        "            persona = recorded.event.prompt\n",
        "            pass\n",
        "test_tail_read_prompt_equals_full_fold_prompt",
    ),
    (
        "domain/conversation.py",
        "persona_name=name, persona_prompt=prompt, persona_version=recorded.version",
        "persona_name=name, persona_prompt=None, persona_version=recorded.version",
        "test_tail_read_state_equals_full_fold_state",
    ),
    (
        "domain/tail.py",
        "        if self._persona is None and isinstance(event, PersonaSelected):",
        "        if False:",
        "test_tail_read_state_equals_full_fold_state",
    ),
    (
        "domain/tail.py",
        "        if self._language is None and isinstance(event, LanguageSelected):",
        "        if False:",
        "test_tail_read_state_equals_full_fold_state",
    ),
    (
        "domain/conversation.py",
        "    if state.language_version <= far:",
        "    if False:",
        "test_a_setting_far_back_is_restated_and_found_by_a_short_tail_read",
    ),
    (
        "domain/tail.py",
        "        self._question = spoken(question.event)",
        "        self._question = question.event.text",
        "test_tail_read_prompt_equals_full_fold_prompt",
    ),
    (
        "domain/prompt.py",
        "                turns = [turn for turn in turns if turn.question_version != asked]\n",
        "                pass\n",
        "test_undo_then_ask_equals_the_prompt_without_the_undone_turn",
    ),
    (
        "domain/prompt.py",
        "            case TurnUndone(question_version=asked):\n",
        '            case TurnUndone(question_version=asked, reason="undo"):\n',
        "test_redo_asks_with_the_prompt_the_old_answer_had",
    ),
    (
        "domain/tail.py",
        "if recorded.version in self._answers and recorded.version not in self._undone:",
        "if recorded.version in self._answers:",
        "test_tail_read_prompt_equals_full_fold_prompt",
    ),
    (
        "domain/tail.py",
        "answered = recorded.version in self._answered and not undone",
        "answered = recorded.version in self._answered",
        "test_tail_read_recent_turns_equal_full_fold",
    ),
    (
        "domain/conversation.py",
        "    if _waits(state.pending, kind, request):\n",
        "    if state.pending.version == request:\n",
        "test_evolve_is_total_and_changes_only_what_its_event_concerns",
    ),
    (
        "domain/conversation.py",
        "    for recorded in events:\n        state = evolve(state, recorded)",
        "    state = INITIAL\n    for recorded in events:\n        state = evolve(state, recorded)",
        "test_folding_in_two_parts_equals_folding_at_once",
    ),
    (
        "domain/prompt.py",
        "                questions.clear()\n                turns.clear()\n",
        "                pass\n",
        "test_nothing_before_the_last_reset_reaches_a_prompt",
    ),
    (
        "domain/prompt.py",
        '    return (Message("system", policy.persona), *reversed(newest_first))\n',
        '    return (Message("system", policy.persona), newest_first[0], *reversed(newest_first[1:]))\n',
        "test_prompt_shape_is_persona_then_alternating_turns_then_question",
    ),
    (
        "domain/prompt.py",
        "        if cost > budget:\n            break\n",
        "        if cost > budget:\n            continue\n",
        "test_kept_turns_are_the_newest_and_fit_the_budget",
    ),
    (
        "domain/tail.py",
        "            case ConversationReset():\n                self._done = True\n",
        "            case ConversationReset():\n                pass\n",
        "test_tail_read_prompt_equals_full_fold_prompt",
    ),
    (
        "domain/tail.py",
        '                self._settled[("question", asked)] = to_deliver(event)\n',
        "                pass\n",
        "test_tail_read_state_equals_full_fold_state",
    ),
    (
        "domain/tail.py",
        "                self._delivered.add(asked)\n",
        "                pass\n",
        "test_tail_read_state_equals_full_fold_state",
    ),
    (
        "domain/conversation.py",
        "        case ReplyDelivered(request_version=request) | DeliveryFailed(request_version=request):\n",
        "        case ReplyDelivered(request_version=request):\n",
        "test_tail_read_state_equals_full_fold_state",
    ),
    (
        "domain/usage.py",
        '                Billed(model, "cached_input", cached),\n',
        "",
        "test_the_cost_of_an_answer_is_exactly_its_billed_tokens_times_the_prices",
    ),
    (
        "domain/usage.py",
        "            totals[key] = totals.get(key, 0) + quantity\n",
        "            totals[key] = quantity\n",
        "test_every_billed_unit_reaches_the_ledger_for_the_asker_the_chat_and_the_total",
    ),
    (
        "domain/usage.py",
        '        holders.insert(0, ("user", str(charge.user_id)))\n',
        "        pass\n",
        "test_every_billed_unit_reaches_the_ledger_for_the_asker_the_chat_and_the_total",
    ),
    (
        "domain/codec.py",
        "    for version in range(schema, SCHEMA_VERSIONS[name]):\n",
        "    for version in range(schema, schema):\n",
        "test_a_schema_1_user_registered_is_upcast",
    ),
    (
        "domain/codec.py",
        "    unknown = sorted(set(data) - known)\n",
        "    unknown: list[str] = []\n",
        "test_malformed_event_documents_are_rejected_clearly",
    ),
]


def main() -> int:
    survived = 0
    for path, old, new, test in MUTATIONS:
        file = pathlib.Path(path)
        original = file.read_text()
        assert old in original, f"mutation target not found in {path}: {old!r}"
        file.write_text(original.replace(old, new, 1))
        try:
            run = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/unit", "-k", test],
                capture_output=True,
                text=True,
                check=False,
                env=os.environ | {"HYPOTHESIS_PROFILE": "mutation"},
            )
        finally:
            file.write_text(original)
        caught = run.returncode == 1
        survived += not caught
        print(f"{'caught  ' if caught else 'SURVIVED'} {test} <- {path}: {new.strip()[:60]!r}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
