"""CONVO_MODELS: the models a chat may pick, the default first, each with its own prompt budget if given one."""

from __future__ import annotations

import pytest

from adapters.openai.settings import ModelChoice
from adapters.openai.tokens import model_prompts
from adapters.settings import ConfigError
from domain.prompt import PromptPolicy


def choice(**env: str) -> ModelChoice:
    return ModelChoice.from_env(env)


def test_models_default_to_the_chat_model_alone():
    assert choice(CONVO_CHAT_MODEL="gpt-4o-mini").models == ("gpt-4o-mini",)
    assert choice(CONVO_CHAT_MODEL="gpt-4o-mini").budgets == {}


def test_a_model_may_carry_its_own_budget_and_the_first_is_the_default():
    models = choice(CONVO_MODELS="llama3:8b=6000, gpt-4o ,gpt-4o-mini=12000,gpt-4o")
    assert models.models == ("llama3:8b", "gpt-4o", "gpt-4o-mini")
    assert models.default_model == "llama3:8b"
    assert models.budgets == {"llama3:8b": 6000, "gpt-4o-mini": 12000}


def test_the_budgets_fold_the_prompts_of_their_models():
    prompts = model_prompts(choice(CONVO_MODELS="a=5000,b,c=900"), PromptPolicy(budget=3000))
    assert prompts.policy_for(None).budget == 5000  # the default model's own replaces CONVO_PROMPT_BUDGET
    assert prompts.policy_for("b").budget == 3000
    assert prompts.policy_for("c").budget == 900
    assert prompts.policy_for("gone-from-the-list").budget == 5000  # as the default model folds


@pytest.mark.parametrize("raw", ["gpt-4o=lots", "gpt-4o=10", "=3000", "gpt 4o", " , ", "gpt-4o=-5"])
def test_a_malformed_list_is_one_clear_error(raw):
    with pytest.raises(ConfigError, match="CONVO_MODELS") as raised:
        choice(CONVO_MODELS=raw)
    assert "gpt-4o=30000" in str(raised.value)
