"""Prices: what a model's tokens cost, read from a small TOML file the user keeps.

Nothing is bundled: a bundled price table is wrong within weeks. A price file lists, per
model, US dollars per million tokens, as the provider's pricing page says::

    [models."gpt-4o-mini"]
    input_per_million = 0.15
    output_per_million = 0.60
    cached_input_per_million = 0.075   # optional: prompt tokens read from the cache

    [models."claude-sonnet-4-5"]
    input_per_million = 3.0
    output_per_million = 15.0
    cached_input_per_million = 0.30
    cache_write_per_million = 3.75     # optional: prompt tokens written to the cache

``ANTFLOW_PRICES=FILE`` gives it to every pipeline of the process (checked when a
`Pipeline` is made); ``antflow-tui --prices FILE`` and scripts use `load_prices` and
`use_prices`. A usage report (`set_task_usage`) without its own ``cost=`` is then priced
by its model. A model name matches a listed one as it is, ignoring case, without a
provider prefix (``openai/gpt-4o-mini``) or without a dated snapshot suffix
(``gpt-4o-mini-2024-07-18``, ``claude-3-5-sonnet-20241022``, ``...-latest``): the name
an API answers with is usually the dated one.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from antflow.exceptions import PriceFileError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from antflow.types import TaskUsage

ENVIRONMENT_VARIABLE: Final = "ANTFLOW_PRICES"
MAX_FILE_BYTES: Final = 1 << 20
"""A price file lists a few models; anything bigger is not one."""
REQUIRED: Final = ("input_per_million", "output_per_million")
OPTIONAL: Final = ("cached_input_per_million", "cache_write_per_million")
_PER_TOKEN: Final = 1e-6
_MATCH_CACHE: Final = 1024
"""Model names whose match is remembered (a run names a few)."""
_DATED = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
_EXAMPLE: Final = (
    'write each model as a table: [models."gpt-4o-mini"] then input_per_million = 0.15 '
    "and output_per_million = 0.60 (US dollars per million tokens), each on its own line"
)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's prices, in US dollars per million tokens.

    Raises:
        ValueError: a price that is not a finite number >= 0.
    """

    input_per_million: float
    """Prompt tokens sent."""
    output_per_million: float
    """Tokens answered."""
    cached_input_per_million: float | None = None
    """Prompt tokens read from the provider's cache; None: priced as input."""
    cache_write_per_million: float | None = None
    """Prompt tokens written to the provider's cache; None: priced as input."""

    def __post_init__(self) -> None:
        for key in (*REQUIRED, *OPTIONAL):
            value = getattr(self, key)
            if value is None and key in OPTIONAL:
                continue
            if _price_problem(value) is not None:
                raise ValueError(f"ModelPrice: {key} must be a number >= 0, got {value!r}")

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """US dollars for a call's tokens (the cached and written ones are part of
        `input_tokens`, as `TaskUsage` counts them)."""
        cached = min(cached_input_tokens, input_tokens)
        written = min(cache_write_tokens, input_tokens - cached)
        plain = input_tokens - cached - written
        rate_in = self.input_per_million
        cached_rate = self.cached_input_per_million
        write_rate = self.cache_write_per_million
        return _PER_TOKEN * (
            plain * rate_in
            + cached * (rate_in if cached_rate is None else cached_rate)
            + written * (rate_in if write_rate is None else write_rate)
            + output_tokens * self.output_per_million
        )

    @property
    def highest_per_token(self) -> float:
        """US dollars of the dearest kind of token: a token estimate priced at it is
        never below what those tokens cost."""
        rates = [self.input_per_million, self.output_per_million]
        rates.extend(r for r in (self.cached_input_per_million, self.cache_write_per_million) if r)
        return max(rates) * _PER_TOKEN


class Prices:
    """Prices by model (see the module docstring for how names match).

    Args:
        models: Each model's prices, by name.
        source: Where they came from (a file's path), for messages.
    """

    def __init__(self, models: Mapping[str, ModelPrice], source: str = "<code>") -> None:
        self.models: Mapping[str, ModelPrice] = MappingProxyType(dict(models))
        self.source = source
        self._folded = {name.lower(): price for name, price in self.models.items()}
        self._matches: dict[str, ModelPrice | None] = {}
        rates = [price.highest_per_token for price in self.models.values()]
        self.highest_per_token: float | None = max(rates) if rates else None
        """The dearest token of any model listed (None: no model)."""

    def __repr__(self) -> str:
        return f"Prices({len(self.models)} models from {self.source})"

    def price_of(self, model: str | None) -> ModelPrice | None:
        """The prices of `model`, or None when it is not listed (or None)."""
        if model is None:
            return None
        matches = self._matches
        if model in matches:
            return matches[model]
        found = self.models.get(model)
        if found is None:
            folded = model.lower()
            bare = folded.rsplit("/", 1)[-1]
            for name in (folded, bare, _DATED.sub("", bare)):
                found = self._folded.get(name)
                if found is not None:
                    break
        if len(matches) < _MATCH_CACHE:
            matches[model] = found
        return found

    def cost_of(self, usage: TaskUsage) -> float | None:
        """US dollars for `usage` by its model's prices (None: model not listed)."""
        price = self.price_of(usage.model)
        if price is None:
            return None
        return price.cost(
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens,
            usage.cache_write_tokens,
        )


# ---------------------------------------------------------------------- the process's prices

_active: Prices | None = None
_chosen = False
"""`use_prices` chose `_active`: the environment's file no longer applies."""
_from_environment: tuple[str, int, int, Prices] | None = None
"""The environment's file as last loaded: its path, mtime, size and prices."""


def current_prices() -> Prices | None:
    """The prices usage reports are priced by (None: none given)."""
    return _active


def use_prices(prices: Prices | str | os.PathLike[str] | None) -> Prices | None:
    """Price every usage report of this process by `prices` from now on.

    Args:
        prices: A `Prices`, a price file's path (read with `load_prices`), or None to go
            back to ``ANTFLOW_PRICES`` (or to no prices without it).

    Returns:
        The prices now in use.

    Raises:
        PriceFileError: the file cannot be used.
    """
    global _active, _chosen
    if prices is None:
        _chosen = False
        _active = None
        return prices_from_environment()
    chosen = prices if isinstance(prices, Prices) else load_prices(prices)
    _active, _chosen = chosen, True
    return chosen


def prices_from_environment() -> Prices | None:
    """Read ``ANTFLOW_PRICES`` (again only when the file changed) and, unless
    `use_prices` chose others, use its prices. `Pipeline` calls it when made, so a bad
    file is told before anything runs.

    Raises:
        PriceFileError: the file cannot be used.
    """
    global _active, _from_environment
    path = os.environ.get(ENVIRONMENT_VARIABLE, "")
    if not path:
        if not _chosen:
            _active = None
        return _active
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (path, -1, -1)
    loaded = _from_environment
    if loaded is None or loaded[:3] != key:
        prices = load_prices(path)
        _from_environment = (*key, prices)
    else:
        prices = loaded[3]
    if not _chosen:
        _active = prices
    return _active


# ---------------------------------------------------------------------- reading a file


def load_prices(path: str | os.PathLike[str]) -> Prices:
    """Read a price file (format in the module docstring).

    Raises:
        PriceFileError: the file cannot be read, is not TOML, lists a model twice, holds
            an unknown key, a price that is not a number >= 0, or no model at all; the
            message names the file, the line and what to write instead.
    """
    shown = os.fspath(path)
    text = _read_text(shown)
    _refuse_repeated_models(shown, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = getattr(error, "lineno", None)
        if line is None:
            found = re.search(r"at line (\d+)", str(error))
            line = int(found.group(1)) if found else None
        raise PriceFileError(shown, f"not valid TOML: {error}; {_EXAMPLE}", line) from None
    lines = _key_lines(text)
    models = _models_table(shown, data, lines)
    prices: dict[str, ModelPrice] = {}
    folded: dict[str, str] = {}
    for name, entry in models.items():
        line = lines.get(("models", name))
        if not name.strip():
            raise PriceFileError(shown, "a model's name is empty; write its name", line)
        same = folded.get(name.lower())
        if same is not None:
            raise PriceFileError(
                shown,
                f"model {_quoted(name)} is listed twice (also as {_quoted(same)}, line "
                f"{lines.get(('models', same), '?')}; names match ignoring case): keep one",
                line,
            )
        folded[name.lower()] = name
        prices[name] = _model_price(shown, name, entry, lines)
    return Prices(prices, source=shown)


def _read_text(path: str) -> str:
    try:
        with Path(path).open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except IsADirectoryError:
        raise PriceFileError(path, f"is a folder; give a TOML file ({_EXAMPLE})") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise PriceFileError(path, f"cannot be read ({reason}); {_EXAMPLE}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise PriceFileError(
            path, f"is over {MAX_FILE_BYTES >> 20} MiB; a price file lists a few models"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise PriceFileError(path, "is not UTF-8 text; save it as UTF-8", line) from None


def _refuse_repeated_models(path: str, text: str) -> None:
    """A model listed twice, told with both lines (TOML's own message is terser)."""
    seen: dict[str, int] = {}
    for number, parsed, header in _parsed_lines(text):
        if not header:
            continue
        keys = _only_path(parsed)
        if len(keys) != 2 or keys[0] != "models":
            continue
        name = keys[1]
        if name in seen:
            raise PriceFileError(
                path,
                f"model {_quoted(name)} is listed twice (first at line {seen[name]}): keep one "
                f"[models.{_quoted(name)}] table",
                number,
            )
        seen[name] = number


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line each table and key is first written on (for messages only: a key
    written some other way, in an inline table, is just not found)."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, parsed, header in _parsed_lines(text):
        if header:
            table = _only_path(parsed)
            lines.setdefault(table, number)
        else:
            for path in _leaf_paths(parsed):
                lines.setdefault(table + path, number)
    return lines


def _parsed_lines(text: str) -> list[tuple[int, dict[str, Any], bool]]:
    """Each line that is TOML on its own: (number, what it holds, is a table header)."""
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith(("#", "[[")):
            continue
        try:
            parsed = tomllib.loads(stripped)
        except tomllib.TOMLDecodeError:
            continue
        found.append((number, parsed, stripped.startswith("[")))
    return found


def _only_path(parsed: dict[str, Any]) -> tuple[str, ...]:
    path: list[str] = []
    node: Any = parsed
    while isinstance(node, dict) and len(node) == 1:
        key = next(iter(node))
        path.append(key)
        node = node[key]
    return tuple(path)


def _leaf_paths(parsed: dict[str, Any]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in parsed.items():
        paths.append((key,))
        if isinstance(value, dict):
            paths.extend((key, *rest) for rest in _leaf_paths(value))
    return paths


def _models_table(
    path: str, data: dict[str, Any], lines: dict[tuple[str, ...], int]
) -> dict[str, Any]:
    for key in data:
        if key != "models":
            raise PriceFileError(
                path,
                f'unknown key {_quoted(key)}: a price file holds [models."NAME"] tables '
                f"only; {_EXAMPLE}",
                lines.get((key,)),
            )
    models = data.get("models")
    if not isinstance(models, dict):
        problem = "lists no model" if models is None else "has models that are not tables"
        raise PriceFileError(path, f"{problem}; {_EXAMPLE}", lines.get(("models",)))
    if not models:
        raise PriceFileError(path, f"lists no model; {_EXAMPLE}", lines.get(("models",)))
    return models


def _model_price(path: str, name: str, entry: Any, lines: dict[tuple[str, ...], int]) -> ModelPrice:
    header = lines.get(("models", name))
    table = f"[models.{_quoted(name)}]"
    if not isinstance(entry, dict):
        raise PriceFileError(
            path,
            f"model {_quoted(name)} is {_shown(entry)}, not a table of prices; write {table} "
            f"and its prices on the lines below it",
            header,
        )
    known = (*REQUIRED, *OPTIONAL)
    for key, value in entry.items():
        line = lines.get(("models", name, key), header)
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}? The" if close else "the"
            raise PriceFileError(
                path,
                f"unknown key {_quoted(key)} in {table}; {hint} keys are {', '.join(known)}",
                line,
            )
        problem = _price_problem(value)
        if problem is not None:
            raise PriceFileError(path, f"{key} of {_quoted(name)} {problem}", line)
    for key in REQUIRED:
        if key not in entry:
            raise PriceFileError(
                path,
                f"{table} has no {key}; add {key} = <US dollars per million tokens> below it",
                header,
            )
    return ModelPrice(**{key: float(value) for key, value in entry.items()})


def _price_problem(value: Any) -> str | None:
    """What is wrong with a price (None: nothing)."""
    if isinstance(value, str):
        return f"is the text {_shown(value)}; write the number without quotes (= 0.15)"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is {_shown(value)}; write a number of US dollars per million tokens (= 0.15)"
    if not math.isfinite(value) or value < 0:
        return f"is {value!r}; a price is a number >= 0 (US dollars per million tokens)"
    return None


def _quoted(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = [
    "ENVIRONMENT_VARIABLE",
    "ModelPrice",
    "Prices",
    "current_prices",
    "load_prices",
    "prices_from_environment",
    "use_prices",
]
