"""An LLM batch job against a rate-limited API: nothing lost to a 429, no call left hanging.

A fake model runs on loopback (examples/_llm_server.py: no network, no API key). Like a
hosted one it allows so many calls a second and so many tokens a minute, answers HTTP 429
with Retry-After past either, refuses prompts over its context length, streams its answer
with a usage count at the end, and now and then never answers at all. The Generate stage
handles all of it:

* `RateLimit(tokens_per_minute=...)`: the token budget we were given, shared by every
  stage that holds it; each call reserves an estimate, and `set_task_usage` puts back
  what the call did not use;
* `adaptive=True`: the calls-per-second limit nobody told us, found from the 429s;
* a 429 is not a failure: the call waits what the server asked and uses up no attempt;
* `task_timeout`: a call that never answers fails with TaskTimeoutError, and is retried;
* `no_retry_on`: a prompt over the context length fails at once (retrying cannot help).

Watch the limit line under the header (the token budget used, 429s a minute, the
cool-down after one counting down), the Generate row's Conc column (the calls it makes at
once as `adaptive=True` finds its level) and the worker grid (what each worker waits
for; each bar: tokens streamed of the most asked for). `-` and `+` on Generate change
its concurrency; enter on it shows the limit's history, its timeouts and tokens used.

    antflow-tui examples/llm_batch.py
    python examples/llm_batch.py
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _llm_server import FakeLLM, count_tokens

from antflow import Pipeline, RateLimit, Stage, set_task_progress, set_task_status, set_task_usage

DOCUMENTS = 200
MODEL = "fake-model-1"
MAX_TOKENS = 400
"""The most tokens a summary may have (the request's max_tokens)."""
TOKENS_PER_MINUTE = 300_000
"""Our token budget with the API (its published tier); its calls-per-second limit is not
published: `adaptive=True` finds it."""

api = FakeLLM()
_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        # No timeout of httpx's own: a call's time limit is the stage's task_timeout.
        _client = httpx.AsyncClient(base_url=api.url, timeout=None)
    return _client


class ContextLengthError(ValueError):
    """The prompt is longer than the model accepts; retrying will not help."""


def document(number: int) -> dict[str, object]:
    rng = random.Random(number)
    return {
        "id": f"doc-{number:03d}",
        "value": {"title": f"Report {number}", "words": rng.randint(80, 1_100)},
    }


items = [document(number) for number in range(DOCUMENTS)]


async def build_prompt(doc: dict[str, object]) -> str:
    """Turn a document into a summarisation prompt."""
    set_task_status(f"prompt for {doc['title']}")
    await asyncio.sleep(0.02)
    body = " ".join(f"w{n % 97}" for n in range(int(doc["words"])))  # type: ignore[call-overload]
    return f"Summarise {doc['title']}: {body}"


async def generate(prompt: str) -> dict[str, object]:
    """Call the model and stream its answer, showing progress; report the tokens used."""
    set_task_status("waiting for the model")
    request = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": MAX_TOKENS,
        "stream": True,
    }
    async with client().stream("POST", "/v1/chat/completions", json=request) as response:
        if response.status_code == 400:
            error = json.loads(await response.aread())["error"]
            if error.get("code") == "context_length_exceeded":
                raise ContextLengthError(error["message"])
        # A 429 raises httpx.HTTPStatusError carrying the response: antflow reads its
        # status and Retry-After, waits, and tries again without using up an attempt.
        response.raise_for_status()
        set_task_status("streaming")
        async for line in response.aiter_lines():
            chunk = json.loads(line)
            if chunk.get("done"):
                usage = chunk["usage"]
                set_task_usage(
                    input_tokens=usage["prompt_tokens"],
                    output_tokens=usage["completion_tokens"],
                    model=MODEL,
                )
                return {"prompt_tokens": usage["prompt_tokens"], "summary": usage}
            # Tokens streamed so far, of the most the request allows: the worker's bar.
            set_task_progress(chunk["tokens"], MAX_TOKENS)
    raise ConnectionError("the stream ended before its usage line")


async def score(result: dict[str, object]) -> float:
    """Score the summary (simulated)."""
    await asyncio.sleep(0.01)
    usage = result["summary"]
    return round(usage["completion_tokens"] / usage["prompt_tokens"], 3)  # type: ignore[index]


budget = RateLimit(
    tokens_per_minute=TOKENS_PER_MINUTE,
    name="fake-llm",
    # A call holds its prompt and the most it may answer until it reports what it used.
    estimate=lambda prompt: count_tokens(prompt) + MAX_TOKENS,
)

pipeline = Pipeline(
    [
        Stage("Prompt", workers=2, tasks=[build_prompt]),
        Stage(
            "Generate",
            workers=24,
            tasks=[generate],
            rate_limit=budget,
            adaptive=True,
            task_timeout=8.0,
            task_attempts=3,
            task_wait_seconds=1.0,
            # A prompt too long today is too long on the third try: fail it at once.
            no_retry_on=[ContextLengthError],
        ),
        Stage("Score", workers=1, tasks=[score]),
    ]
)


async def main() -> None:
    results = await pipeline.run(items, dashboard="full")
    print(f"scored {len(results)} of {len(items)} documents")
    await client().aclose()


if __name__ == "__main__":
    asyncio.run(main())
