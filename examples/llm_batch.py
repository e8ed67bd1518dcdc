"""An LLM batch job: long calls that report how far they got with `set_task_progress`.

A stand-in "model" (no network, no API key) streams tokens slowly, sometimes answers
"rate limited" (antflow retries after a wait, and the job logs a warning) and refuses
prompts that are too long: those fail at once, since `no_retry_on` says retrying a
`ContextLengthError` cannot help. Watch the worker grid: each worker shows a bar of the
tokens streamed out of the most it asked for, and the stage screen (enter on Generate)
shows how long generations take and which were the slowest.

    antflow-tui examples/llm_batch.py
    python examples/llm_batch.py
"""

from __future__ import annotations

import asyncio
import logging
import random

from antflow import Pipeline, Stage, set_task_progress, set_task_status

DOCUMENTS = 60
MAX_PROMPT_WORDS = 900
MAX_TOKENS = 400
"""The most tokens a summary may have (the request's max_tokens)."""

log = logging.getLogger("llm_batch")


class RateLimitError(RuntimeError):
    """The model asked us to slow down; trying again later works."""


class ContextLengthError(ValueError):
    """The prompt is longer than the model accepts; retrying will not help."""


def document(number: int) -> dict[str, object]:
    rng = random.Random(number)
    words = rng.randint(80, 1_100)
    return {"id": f"doc-{number:03d}", "value": {"title": f"Report {number}", "words": words}}


items = [document(number) for number in range(DOCUMENTS)]
_calls = random.Random(42)
"""Decides which calls get rate limited: a quarter of them, whatever the document."""


async def build_prompt(doc: dict[str, object]) -> dict[str, object]:
    """Turn a document into a summarisation prompt."""
    set_task_status(f"prompt for {doc['title']}")
    await asyncio.sleep(0.05)
    return {**doc, "prompt_words": int(doc["words"]) + 40}  # type: ignore[call-overload]


async def generate(prompt: dict[str, object]) -> dict[str, object]:
    """Call the (simulated) model, streaming tokens and showing progress."""
    words = int(prompt["prompt_words"])  # type: ignore[call-overload]
    if words > MAX_PROMPT_WORDS:
        raise ContextLengthError(f"prompt of {words} words exceeds {MAX_PROMPT_WORDS}")
    set_task_status("waiting for the model")
    if _calls.random() < 0.25:
        await asyncio.sleep(0.3)
        log.warning("%s: rate limited, trying again in 1s", prompt["title"])
        raise RateLimitError("429: rate limited, retry after 1s")
    rng = random.Random(words)
    tokens = rng.randint(120, MAX_TOKENS)
    set_task_status("streaming")
    for done in range(0, tokens, 20):
        # Tokens streamed so far, of the most the request allows: the worker grid's bar.
        set_task_progress(done, MAX_TOKENS)
        await asyncio.sleep(rng.uniform(0.1, 0.3))
    set_task_progress(tokens, MAX_TOKENS)
    set_task_status(f"generated {tokens} tokens")
    return {**prompt, "summary_tokens": tokens}


async def score(result: dict[str, object]) -> float:
    """Score the summary (simulated)."""
    await asyncio.sleep(0.02)
    return round(int(result["summary_tokens"]) / int(result["prompt_words"]), 3)  # type: ignore[call-overload]


pipeline = Pipeline(
    [
        Stage("Prompt", workers=2, tasks=[build_prompt]),
        Stage(
            "Generate",
            workers=4,
            tasks=[generate],
            task_attempts=4,
            task_wait_seconds=1.0,
            task_concurrency_limits={"generate": 4},
            # A prompt too long today is too long on the fourth try: fail it at once.
            no_retry_on=[ContextLengthError],
        ),
        Stage("Score", workers=1, tasks=[score]),
    ]
)


async def main() -> None:
    results = await pipeline.run(items, dashboard="full")
    print(f"scored {len(results)} of {len(items)} documents")


if __name__ == "__main__":
    asyncio.run(main())
