"""Reading what an API call used from its response, so a task can pass the response as is.

Shapes read (objects of the official SDKs, or the JSON body as a dict, e.g. httpx's
``response.json()``), from ``response.usage`` or from a usage object given itself:

- OpenAI Chat Completions: ``prompt_tokens``, ``completion_tokens``,
  ``prompt_tokens_details.cached_tokens``;
- OpenAI Responses: ``input_tokens``, ``output_tokens``,
  ``input_tokens_details.cached_tokens``;
- Anthropic Messages: ``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
  ``cache_creation_input_tokens`` (Anthropic counts cache reads and writes apart from
  ``input_tokens``; `TaskUsage` counts every prompt token as input, so they are added).

The model is the response's ``model`` unless one is given. A field that is missing, not
a number, negative or not finite counts as absent: reading never raises.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from antflow.context import current_holder, report_usage
from antflow.types import TaskUsage

logger = logging.getLogger(__name__)

_MAX_MODEL_NAME: Final = 200
_MAX_WARNED: Final = 64
_warned: set[str] = set()
"""Types of objects already told to have no usage (one warning per type)."""


def usage_of(response: object, model: str | None = None) -> TaskUsage | None:
    """The usage an OpenAI- or Anthropic-shaped response reports (see the module
    docstring), as one report; None when it reports none.

    Args:
        response: The response, its ``usage``, or either as a dict.
        model: The model to name; default the response's ``model``.
    """
    usage = _field(response, "usage")
    if usage is None:
        usage = response
    prompt = _count(usage, "prompt_tokens")
    if prompt is not None:
        sent = prompt
        answered = _count(usage, "completion_tokens") or 0
        cached = _count(_field(usage, "prompt_tokens_details"), "cached_tokens") or 0
        written = 0
    else:
        given_in = _count(usage, "input_tokens")
        answered_out = _count(usage, "output_tokens")
        if given_in is None and answered_out is None:
            return None
        sent, answered = given_in or 0, answered_out or 0
        if _has(usage, "cache_read_input_tokens") or _has(usage, "cache_creation_input_tokens"):
            cached = _count(usage, "cache_read_input_tokens") or 0
            written = _count(usage, "cache_creation_input_tokens") or 0
            sent += cached + written
        else:
            cached = _count(_field(usage, "input_tokens_details"), "cached_tokens") or 0
            written = 0
    cached = min(cached, sent)
    return TaskUsage(
        input_tokens=sent,
        output_tokens=answered,
        model=_model(model) if model is not None else _model(_field(response, "model")),
        reports=1,
        cached_input_tokens=cached,
        cache_write_tokens=min(written, sent - cached),
    )


def set_task_usage_from(
    response: object, model: str | None = None, cost: float | None = None
) -> TaskUsage | None:
    """Report what an API call used, read from its response (`set_task_usage` with the
    numbers of ``response.usage``; shapes in the module docstring).

    ``antflow.set_task_usage_from(await client.chat.completions.create(...))`` works
    with the OpenAI and Anthropic SDKs, their JSON bodies as dicts, and a streamed
    call's final chunk or message. Like `set_task_usage`, it never fails the task; a
    response without a usage reports nothing (a warning, once per type, names it when
    it has no ``usage`` at all). Outside a pipeline worker it only reads.

    Args:
        response: The response (or its ``usage``), an object or a dict.
        model: The model that answered; default the response's ``model``.
        cost: US dollars the call cost, when the task knows it better than the prices.

    Returns:
        The usage read, or None when the response reports none.
    """
    try:
        usage = usage_of(response, model)
    except Exception:  # a hostile object; reading must never fail the task
        logger.debug("could not read a usage from a %s", type(response).__name__, exc_info=True)
        usage = None
    if usage is None:
        _warn_once(response)
        return None
    if cost is not None:
        usage = replace(usage, cost=_number(cost))
    holder = current_holder()
    if holder is not None:
        report_usage(holder, usage)
    return usage


def _warn_once(response: object) -> None:
    if response is None or _field(response, "usage") is not None or _has(response, "usage"):
        return  # a streamed chunk before its usage: nothing to say
    kind = type(response).__qualname__
    if kind in _warned or len(_warned) >= _MAX_WARNED:
        return
    _warned.add(kind)
    logger.warning(
        "set_task_usage_from: a %s has no usage to read (no .usage, prompt_tokens or "
        "input_tokens); pass the numbers to set_task_usage instead",
        kind,
    )


def _field(container: object, name: str) -> Any:
    if container is None:
        return None
    try:
        if isinstance(container, Mapping):
            return container.get(name)
        return getattr(container, name, None)
    except Exception:
        return None


def _has(container: object, name: str) -> bool:
    try:
        if isinstance(container, Mapping):
            return name in container
        return hasattr(container, name)
    except Exception:
        return False


def _count(container: object, name: str) -> int | None:
    number = _number(_field(container, name))
    return None if number is None else int(number)


def _number(value: object) -> float | None:
    """`value` if it is a finite number >= 0 (not a bool, not a string), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _model(value: object) -> str | None:
    return value[:_MAX_MODEL_NAME] if isinstance(value, str) and value else None


__all__ = ["set_task_usage_from", "usage_of"]
