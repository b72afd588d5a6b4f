"""Start-up: how long `convo replay --list` and `convo bot` take to be useful, beside what they cannot go below.

`python -m bench.startup [--runs 7]`

Each round runs, one after another on the same machine:
- `python -c pass`: the interpreter alone, the floor no command goes under;
- `python -c "import openai, aiogram"`: what every command paid before store commands stopped importing the SDKs;
- `import aiogram` as aiogram does it (every Bot API type built at import) and as convo does it
  (`import adapters.telegram`: types built on first use, `adapters/telegram/lazy_types.py`);
- `convo --help`;
- `convo replay --list` on an empty SQLite store, to its exit;
- `convo bot` on an empty SQLite store, from the spawn to its first getUpdates reaching a local fake Bot API.

It prints each one's median and spread (min-max) in seconds, the ratios of the medians, and the load average
before and after the run: a figure from an idle machine does not hold on a busy one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.concurrency import fakes
from tests.e2e.harness import bot_env

Measure = Callable[[Path], Coroutine[Any, Any, float]]


async def _timed(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"{argv} failed: {err.decode()[-500:]}")
    return time.perf_counter() - began


async def interpreter(workdir: Path) -> float:
    return await _timed(sys.executable, "-c", "pass")


async def sdk_imports(workdir: Path) -> float:
    return await _timed(sys.executable, "-c", "import openai, aiogram")


async def aiogram_eager(workdir: Path) -> float:
    return await _timed(sys.executable, "-c", "import aiogram")


async def aiogram_lazy(workdir: Path) -> float:
    return await _timed(sys.executable, "-c", "import adapters.telegram")


async def help_text(workdir: Path) -> float:
    return await _timed(sys.executable, "-m", "entrypoints.cli", "--help", cwd=workdir)


async def replay_list(workdir: Path) -> float:
    env = {**os.environ, "CONVO_STORE": f"sqlite:///{workdir}/replay.db"}
    return await _timed(sys.executable, "-m", "entrypoints.cli", "replay", "--list", env=env, cwd=workdir)


async def bot_to_first_poll(workdir: Path) -> float:
    async with fakes(0.0) as (tg, ai):
        env = bot_env(tg, ai, f"sqlite:///{workdir}/bot-{time.monotonic_ns()}.db")
        began = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "entrypoints.cli", "bot", env=env, cwd=workdir,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while not tg.calls_to("getUpdates"):
                if process.returncode is not None or time.monotonic() - began > 120:
                    raise RuntimeError("the bot did not start polling")
                await asyncio.sleep(0.005)
            return tg.calls_to("getUpdates")[0].time - began
        finally:
            process.terminate()
            await process.wait()


TARGETS = {"convo bot -> 1st getUpdates": 2.0, "convo replay --list": 0.5, "convo --help": 0.3}
"""Issue 19's targets, in seconds (medians, on an idle 2-core machine)."""

MEASURES: dict[str, Measure] = {
    "python -c pass": interpreter,
    "import openai, aiogram": sdk_imports,
    "import aiogram (eager types)": aiogram_eager,
    "import aiogram (lazy types)": aiogram_lazy,
    "convo --help": help_text,
    "convo replay --list": replay_list,
    "convo bot -> 1st getUpdates": bot_to_first_poll,
}


async def run(runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in MEASURES}
    with tempfile.TemporaryDirectory(prefix="convo-startup-") as tmp:
        for _ in range(runs):
            for name, measure in MEASURES.items():
                samples[name].append(await measure(Path(tmp)))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    load_before = os.getloadavg()
    samples = asyncio.run(run(runs))
    load_after = os.getloadavg()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{runs} rounds; load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")
    for name, values in samples.items():
        print(f"  {name:<30} median {medians[name]:.3f} s  (min {min(values):.3f}, max {max(values):.3f})")
    replay = medians["convo replay --list"]
    print(f"  replay --list / interpreter alone:        {replay / medians['python -c pass']:.1f}x")
    print(f"  SDK imports alone / replay --list:        {medians['import openai, aiogram'] / replay:.1f}x")
    print(f"  bot to first poll / replay --list:        {medians['convo bot -> 1st getUpdates'] / replay:.1f}x")
    eager, lazy = medians["import aiogram (eager types)"], medians["import aiogram (lazy types)"]
    print(f"  aiogram eager / lazy (adapters.telegram): {eager / lazy:.1f}x")
    for name, target in TARGETS.items():
        verdict = "met" if medians[name] <= target else "MISSED"
        print(f"  target {name}: at most {target} s: {verdict} ({medians[name]:.3f} s)")


if __name__ == "__main__":
    main()
