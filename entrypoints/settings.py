"""The prompt's and recovery's settings models, and the conversation service's settings composed from them.

Every setting is a field of a pydantic-settings model, one per concern (`adapters.env_settings`), except four:
- Telegram: `TelegramSettings` in adapters/telegram/settings.py;
- the model: `OpenAISettings` in adapters/openai/settings.py (its `ModelChoice` part for `convo replay`);
- the prompt, personas, prices and recovery: `PromptSettings`, `PersonaSettings`, `PriceSettings` and
  `RecoverySettings` here;
- Fauna's secret: `FaunaSecret` in adapters/fauna/connection.py.
The exceptions: the store's URL and the two logging switches, read in entrypoints/config.py without pydantic so that
the store commands start without importing it; and FAUNA_ENDPOINT, which `FaunaEventStore.from_env` reads itself.
entrypoints/bootstrap.py reads every model before it builds anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import attrs

from adapters.env_settings import EnvSettings, Whole, setting
from adapters.openai.settings import OpenAISettings
from adapters.settings import ConfigError
from domain.prices import PriceTable
from domain.prompt import PromptPolicy
from service.budgets import BudgetLimits
from service.personas import PersonaFileError, Personas, load_personas
from service.price_file import PriceFileError, load_price_file
from service.vision import Vision, VisionMode

_POLICY = PromptPolicy()


class PromptSettings(EnvSettings):
    """Who the assistant is and how much of the conversation a prompt may carry."""

    persona: str = setting("CONVO_PERSONA", default=_POLICY.persona)
    """The system message that opens every prompt."""
    budget: Whole = setting("CONVO_PROMPT_BUDGET", default=_POLICY.budget, ge=64)
    """Most tokens of a prompt."""
    lookback: Whole = setting("CONVO_PROMPT_LOOKBACK", default=_POLICY.lookback, ge=2)
    """Most events before a question that its prompt may draw on."""

    def policy(self) -> PromptPolicy:
        """The prompt policy these settings describe."""
        return PromptPolicy(persona=self.persona, budget=self.budget, lookback=self.lookback)


class MediaSettings(EnvSettings):
    """Pictures sent to the chat model."""

    vision: VisionMode = setting("CONVO_VISION", default="auto")
    """`auto`: send pictures until a model's server refuses them, then say so; `on`: always; `off`: never."""
    vision_max_side: Whole = setting("CONVO_VISION_MAX_SIDE", default=1536, ge=90, le=10_000)
    """The longest side, in pixels, of the photo size sent (the largest Telegram size within it)."""
    vision_history: Whole = setting("CONVO_VISION_HISTORY", default=1, ge=0, le=20)
    """How many of the newest turns with pictures send them again; older ones become a `[photo]` mark."""

    def vision_policy(self) -> Vision:
        """Which models are sent pictures, and how many turns' pictures."""
        return Vision(self.vision, self.vision_history)


class PersonaSettings(EnvSettings):
    """The personas a chat may choose (`/persona`)."""

    file: Path | None = setting("CONVO_PERSONAS", default=None)
    """A TOML file of the operator's presets: `[name]` tables with `title` and `prompt`."""
    max_chars: Whole = setting("CONVO_PERSONA_MAX_CHARS", default=2000, ge=1, le=20_000)
    """Longest system prompt a chat may write itself with `/persona <text>`."""

    def personas(self) -> Personas:
        """The catalogue; ConfigError names a bad file."""
        try:
            return load_personas(self.file, self.max_chars)
        except PersonaFileError as error:
            raise ConfigError(str(error)) from None


class PriceSettings(EnvSettings):
    """What model usage costs (`convo usage`, budgets)."""

    file: Path | None = setting("CONVO_PRICES", default=None)
    """A TOML file of prices added to the built-in table (see service/price_file.py)."""


def price_table(env: Mapping[str, str], override: str | None = None) -> PriceTable:
    """The built-in prices with CONVO_PRICES's (or the file `override` names) added; ConfigError names a bad file."""
    path = Path(override) if override is not None else PriceSettings.from_env(env).file
    if path is None:
        return PriceTable()
    try:
        return load_price_file(path)
    except PriceFileError as error:
        raise ConfigError(f"{'--prices' if override is not None else 'CONVO_PRICES'}: {error}") from None


class BudgetSettings(EnvSettings):
    """Spending caps in USD, checked before each model call (days and months are UTC)."""

    user_day: Decimal | None = setting("CONVO_BUDGET_USER_DAY", default=None, ge=0)
    """What one user may spend in a day, across every chat."""
    user_month: Decimal | None = setting("CONVO_BUDGET_USER_MONTH", default=None, ge=0)
    """What one user may spend in a month."""
    chat_month: Decimal | None = setting("CONVO_BUDGET_CHAT_MONTH", default=None, ge=0)
    """What one chat may spend in a month."""
    total_month: Decimal | None = setting("CONVO_BUDGET_TOTAL_MONTH", default=None, ge=0)
    """What the whole bot may spend in a month."""

    def limits(self, exempt: frozenset[int] = frozenset()) -> BudgetLimits:
        """The caps, with the users the user caps do not apply to."""
        return BudgetLimits(self.user_day, self.user_month, self.chat_month, self.total_month, exempt)


class RecoverySettings(EnvSettings):
    """How long another worker may be answering before this one takes a request over."""

    grace: float | None = setting("CONVO_RECOVERY_GRACE", default=None, ge=0)
    """Seconds; None for the store's default."""

    def takeover_after(self, store: str) -> float:
        """The grace for the store at URL `store`: the embedded store serves one process, so anything pending at
        start-up is left by a dead one (0 s); a shared store may have live workers (20 s)."""
        if self.grace is not None:
            return self.grace
        return 0.0 if store.startswith(("sqlite:", "memory:")) else 20.0


@attrs.frozen
class ServiceSettings:
    """What the conversation service is built from (the bot reads `TelegramSettings` before these)."""

    model: OpenAISettings
    """The model's settings."""
    prompt: PromptSettings
    """The prompt policy's settings."""
    recovery: RecoverySettings
    """Recovery's settings."""
    personas: Personas
    """The personas a chat may choose."""
    budgets: BudgetSettings
    """The spending caps."""
    prices: PriceTable
    """What model usage costs."""
    media: MediaSettings
    """Pictures sent to the chat model."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceSettings:
        """Read and check them in this order; ConfigError names the first bad variable."""
        return cls(
            model=OpenAISettings.from_env(env),
            prompt=PromptSettings.from_env(env),
            recovery=RecoverySettings.from_env(env),
            personas=PersonaSettings.from_env(env).personas(),
            budgets=BudgetSettings.from_env(env),
            prices=price_table(env),
            media=MediaSettings.from_env(env),
        )
