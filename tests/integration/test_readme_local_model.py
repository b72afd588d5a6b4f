"""The README's recipe for a local model, run as written: its `.env` lines, read from README.md, drive `convo chat`
against the local OpenAI double acting as llama.cpp's server with the README's `-c`.

The double counts tokens its own way (a word or a punctuation mark each), serves llama.cpp's `/tokenize` with that
count, refuses a prompt that fills the context with llama.cpp's own 400 body, and ends an answer with `length`
where prompt and answer fill it. The only change to the README's lines is the port of `OPENAI_BASE_URL`: the
double listens on a free one rather than 8080.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from tests.doubles.openai_server import FakeOpenAI, prompt_tokens

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "### A local model (llama.cpp's server)"
STORY = "the cat sat on a mat and then it ran to see the dog , who was not there at all"


def recipe() -> tuple[int, dict[str, str]]:
    """The context size of the README's `llama-server` line, and its `.env` lines."""
    text = README.read_text()
    assert SECTION in text, "the README lost its local model section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = dict(re.findall(r"```(\w+)\n(.*?)```", section, re.S))
    context = re.search(r"^llama-server .*-c (\d+)", blocks["sh"], re.M)
    assert context is not None, blocks["sh"]
    lines = [line for line in blocks["dotenv"].splitlines() if line.strip()]
    return int(context.group(1)), dict(line.split("=", 1) for line in lines)


def long_answer(tokens: int) -> str:
    """An answer of about `tokens` of the double's tokens (short English words, as a model writes)."""
    words = STORY.split()
    return " ".join(words[index % len(words)] for index in range(tokens))


async def test_the_readme_recipe_answers_every_question_with_every_prompt_within_the_context(tmp_path):
    context, lines = recipe()
    assert {"OPENAI_BASE_URL", "CONVO_PROMPT_BUDGET", "CONVO_MAX_TOKENS"} <= set(lines)
    budget, max_tokens = int(lines["CONVO_PROMPT_BUDGET"]), int(lines["CONVO_MAX_TOKENS"])
    assert budget + max_tokens <= context
    questions = [f"question {number}: tell me a long story about the cat" for number in range(1, 8)]
    async with FakeOpenAI(api_key=None, context_window=context, overflow="llama.cpp", tokenize="llama.cpp") as ai:
        ai.set_answer(lambda request: long_answer(650))
        base = urlsplit(lines["OPENAI_BASE_URL"])
        assert (base.scheme, base.hostname, base.port, base.path) == ("http", "127.0.0.1", 8080, "/v1")
        env_file = {**lines, "OPENAI_BASE_URL": lines["OPENAI_BASE_URL"].replace(":8080/", f":{ai.port}/")}
        (tmp_path / ".env").write_text("".join(f"{name}={value}\n" for name, value in env_file.items()))
        output = await chat(tmp_path, questions)
        requests = ai.chat_requests
        assert output.count(f"bot> {long_answer(650)}") == len(questions), output
        assert "failed" not in output and "Traceback" not in output
        assert len(requests) == len(questions) and all(request.status == 200 for request in requests)
        for request in requests:
            assert request.body["max_tokens"] == max_tokens
            assert prompt_tokens(request.messages) <= budget
            assert prompt_tokens(request.messages) + max_tokens <= context
        assert len(requests[-1].messages) < 2 * len(questions)  # the oldest turns were dropped to fit
        everything = prompt_tokens([message for request in requests for message in request.messages[1:]])
        assert everything > context  # without the budget, the conversation would not fit
        assert ai.tokenize_calls >= len(questions)  # counted by the server's tokenizer too


async def test_the_double_refuses_and_cuts_as_llama_server_does():
    async with (
        FakeOpenAI(api_key=None, context_window=100, overflow="llama.cpp") as ai,
        aiohttp.ClientSession(headers={"Authorization": "Bearer local"}) as http,
    ):
        url = f"{ai.base_url}/chat/completions"
        over = {"model": "local", "messages": [{"role": "user", "content": long_answer(120)}]}
        async with http.post(url, json=over) as response:
            assert response.status == 400
            body = await response.json()
        error = body["error"]
        assert error["type"] == "exceed_context_size_error" and error["n_ctx"] == 100 and error["n_prompt_tokens"] > 100
        assert "exceeds the available context size (100 tokens)" in error["message"]
        ai.set_answer(long_answer(80))
        under = {"model": "local", "messages": [{"role": "user", "content": long_answer(50)}], "max_tokens": 1000}
        async with http.post(url, json=under) as response:
            choice = (await response.json())["choices"][0]
        assert choice["finish_reason"] == "length"
        assert prompt_tokens(under["messages"]) + len(choice["message"]["content"].split()) == 100


def test_the_readme_names_the_python_pyproject_requires_and_this_one_meets_it():
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert required == ">=3.11"
    assert "It needs Python 3.11 or newer" in README.read_text()
    assert sys.version_info >= (3, 11)


async def chat(workdir: Path, lines: list[str]) -> str:
    """`convo chat` in `workdir` with nothing in its environment but PATH (and PYTHONPATH): the rest is `.env`."""
    env = {"PATH": "/usr/bin:/bin", **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ}}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "entrypoints.cli",
        "chat",
        "--user",
        "reader",
        env=env,
        cwd=workdir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate("\n".join(lines).encode() + b"\n"), 120)
    assert process.returncode == 0, out.decode()
    return out.decode()
