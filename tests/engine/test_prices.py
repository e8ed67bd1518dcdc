"""Price files (issue 22, cost): the user's prices by model, nothing bundled; a file that
cannot be used gives one clear message naming the file, the line and what to write."""

from __future__ import annotations

import asyncio
import pickle
from typing import TYPE_CHECKING

import pytest

import antflow.prices as prices_module
from antflow import (
    ModelPrice,
    Pipeline,
    PriceFileError,
    Prices,
    Stage,
    StatusTracker,
    load_prices,
    set_task_usage,
    use_prices,
)
from antflow.prices import current_prices
from antflow.types import TaskUsage

if TYPE_CHECKING:
    from pathlib import Path

GOOD = """\
# US dollars per million tokens
[models."gpt-4o-mini"]
input_per_million = 0.15
output_per_million = 0.60
cached_input_per_million = 0.075

[models."claude-sonnet-4-5"]
input_per_million = 3
output_per_million = 15.0
cached_input_per_million = 0.30
cache_write_per_million = 3.75
"""


def write(tmp_path: Path, text: str | bytes, name: str = "prices.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_a_price_file_reads_as_written(tmp_path: Path) -> None:
    prices = load_prices(write(tmp_path, GOOD))
    assert prices.models["gpt-4o-mini"] == ModelPrice(0.15, 0.60, 0.075, None)
    assert prices.models["claude-sonnet-4-5"] == ModelPrice(3.0, 15.0, 0.30, 3.75)
    assert prices.highest_per_token == pytest.approx(15.0e-6)
    assert prices.source.endswith("prices.toml")


def test_cost_counts_cached_and_written_input_at_their_prices() -> None:
    sonnet = ModelPrice(3.0, 15.0, 0.30, 3.75)
    # 1,000 input of which 600 read from the cache and 100 written to it; 200 out.
    assert sonnet.cost(1_000, 200, cached_input_tokens=600, cache_write_tokens=100) == (
        pytest.approx((300 * 3.0 + 600 * 0.30 + 100 * 3.75 + 200 * 15.0) / 1e6)
    )
    plain = ModelPrice(1.0, 2.0)  # no cache prices: cached tokens cost as input
    assert plain.cost(1_000, 0, cached_input_tokens=400) == pytest.approx(1_000 / 1e6)
    with pytest.raises(ValueError, match="must be a number >= 0"):
        ModelPrice(-1.0, 2.0)


def test_model_names_match_as_apis_answer_them() -> None:
    mini = ModelPrice(0.15, 0.60)
    sonnet = ModelPrice(3.0, 15.0)
    prices = Prices({"gpt-4o-mini": mini, "claude-3-5-sonnet": sonnet, "gpt-4o": sonnet})
    assert prices.price_of("gpt-4o-mini") is mini
    assert prices.price_of("gpt-4o-mini-2024-07-18") is mini  # OpenAI answers dated
    assert prices.price_of("GPT-4o-Mini") is mini
    assert prices.price_of("openai/gpt-4o-mini") is mini
    assert prices.price_of("claude-3-5-sonnet-20241022") is sonnet
    assert prices.price_of("claude-3-5-sonnet-latest") is sonnet
    # Only a dated suffix is taken off: gpt-4o-mini is not gpt-4o.
    assert Prices({"gpt-4o": sonnet}).price_of("gpt-4o-mini") is None
    assert prices.price_of("llama-3") is None
    assert prices.price_of(None) is None
    usage = TaskUsage(input_tokens=1_000_000, output_tokens=0, model="gpt-4o-mini-2024-07-18")
    assert prices.cost_of(usage) == pytest.approx(0.15)
    assert prices.cost_of(TaskUsage(input_tokens=5, model="unknown")) is None


# Issue 22: each kind of unusable price file gives one message naming the file, the
# line (or key) and what to write instead.
@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        pytest.param(
            '[models."m"]\ninput_per_million = 0.15\noutput_per_million 0.60\n',
            3,
            ["not valid TOML", "line 3", 'write each model as a table: [models."gpt-4o-mini"]'],
            id="bad-toml",
        ),
        pytest.param(
            '[models."m"]\ninput_per_million = -0.15\noutput_per_million = 0.60\n',
            2,
            ['input_per_million of "m" is -0.15', "a price is a number >= 0"],
            id="negative",
        ),
        pytest.param(
            '[models."m"]\ninput_per_million = "0.15"\noutput_per_million = 0.60\n',
            2,
            ['is the text "0.15"', "write the number without quotes"],
            id="quoted-number",
        ),
        pytest.param(
            '[models."m"]\ninput_per_million = true\noutput_per_million = 0.60\n',
            2,
            ["is true", "write a number of US dollars per million tokens"],
            id="boolean",
        ),
        pytest.param(
            '[models."m"]\ninput_per_million = nan\noutput_per_million = 0.60\n',
            2,
            ["is nan", "a price is a number >= 0"],
            id="nan",
        ),
        pytest.param(
            '[models."m"]\ninput_per_milion = 0.15\noutput_per_million = 0.60\n',
            2,
            ['unknown key "input_per_milion"', "did you mean input_per_million?"],
            id="misspelt-key",
        ),
        pytest.param(
            'currency = "EUR"\n[models."m"]\ninput_per_million = 1\noutput_per_million = 2\n',
            1,
            ['unknown key "currency"', '[models."NAME"] tables only'],
            id="unknown-top-level-key",
        ),
        pytest.param(
            '[models."m"]\ninput_per_million = 1\noutput_per_million = 2\n\n'
            '[models."n"]\ninput_per_million = 1\noutput_per_million = 2\n\n'
            '[models."m"]\ninput_per_million = 3\noutput_per_million = 4\n',
            9,
            ['model "m" is listed twice (first at line 1)', 'keep one [models."m"] table'],
            id="listed-twice",
        ),
        pytest.param(
            '[models."GPT-4o"]\ninput_per_million = 1\noutput_per_million = 2\n'
            '[models."gpt-4o"]\ninput_per_million = 1\noutput_per_million = 2\n',
            4,
            ['model "gpt-4o" is listed twice (also as "GPT-4o", line 1', "ignoring case"],
            id="listed-twice-in-another-case",
        ),
        pytest.param(
            '[models."m"]\ninput_per_million = 0.15\n',
            1,
            ['[models."m"] has no output_per_million', "add output_per_million = "],
            id="missing-price",
        ),
        pytest.param(
            "[models]\nm = 0.15\n",
            2,
            ['model "m" is 0.15, not a table of prices', 'write [models."m"]'],
            id="model-not-a-table",
        ),
        pytest.param("# nothing yet\n", None, ["lists no model"], id="empty"),
    ],
)
def test_a_price_file_that_cannot_be_used_says_where_and_what_to_write(
    tmp_path: Path, text: str, line: int | None, says: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PriceFileError) as raised:
        load_prices(path)
    message = str(raised.value)
    assert message.startswith(f"price file {path}")
    assert "\n" not in message
    for part in says:
        assert part in message
    assert raised.value.line == line
    assert raised.value.path == str(path)
    copy = pickle.loads(pickle.dumps(raised.value))
    assert (str(copy), copy.line) == (message, line)


def test_a_file_that_cannot_be_read_says_so(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match=r"cannot be read \(No such file or directory\)"):
        load_prices(tmp_path / "missing.toml")
    with pytest.raises(PriceFileError, match="is a folder; give a TOML file"):
        load_prices(tmp_path)
    latin = write(tmp_path, b'[models."caf\xe9"]\n', "latin.toml")
    with pytest.raises(PriceFileError, match=r"line 1: is not UTF-8 text; save it as UTF-8"):
        load_prices(latin)
    huge = write(tmp_path, b"#" * (prices_module.MAX_FILE_BYTES + 1), "huge.toml")
    with pytest.raises(PriceFileError, match="is over 1 MiB"):
        load_prices(huge)


# Issue 22: ANTFLOW_PRICES is read when a pipeline is made, so a bad file is told before
# anything runs; a good one prices every report that gives no cost=.
def test_antflow_prices_is_checked_when_a_pipeline_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = write(tmp_path, '[models."m"]\ninput_per_million = -1\n', "bad.toml")
    monkeypatch.setenv("ANTFLOW_PRICES", str(bad))
    with pytest.raises(PriceFileError, match=r"bad\.toml, line 2: input_per_million"):
        Pipeline([Stage("A", 1, [asyncio.sleep])])
    good = write(tmp_path, GOOD)
    monkeypatch.setenv("ANTFLOW_PRICES", str(good))
    Pipeline([Stage("A", 1, [asyncio.sleep])])
    prices = current_prices()
    assert prices is not None
    assert prices.source == str(good)
    # A choice in code wins over the environment, until given back.
    mine = Prices({"mine": ModelPrice(1.0, 1.0)})
    use_prices(mine)
    Pipeline([Stage("A", 1, [asyncio.sleep])])
    assert current_prices() is mine
    assert use_prices(None) is not None
    assert current_prices() is not mine


async def test_reports_are_priced_by_their_model_unless_they_give_a_cost(
    tmp_path: Path,
) -> None:
    use_prices(write(tmp_path, GOOD))
    tracker = StatusTracker()

    async def ask(key: str) -> str:
        if key == "given":
            set_task_usage(input_tokens=10, output_tokens=10, cost=1.5, model="gpt-4o-mini")
        elif key == "unlisted":
            set_task_usage(input_tokens=10, output_tokens=10, model="llama")
        else:
            set_task_usage(
                input_tokens=2_000_000,
                output_tokens=1_000_000,
                model="gpt-4o-mini-2024-07-18",
                cached_input_tokens=1_000_000,
            )
        return key

    pipeline = Pipeline([Stage("Ask", 2, [ask])], status_tracker=tracker)
    await pipeline.run(["priced", "given", "unlisted"])

    priced = tracker.get_usage(0)
    assert priced is not None
    assert priced.cost == pytest.approx(0.15 + 0.075 + 0.60)
    assert (priced.unpriced, priced.cached_input_tokens) == (0, 1_000_000)
    given = tracker.get_usage(1)
    assert given is not None
    assert (given.cost, given.unpriced) == (1.5, 0)
    unlisted = tracker.get_usage(2)
    assert unlisted is not None
    assert (unlisted.cost, unlisted.unpriced, unlisted.total_tokens) == (None, 1, 20)
    stage = pipeline.get_limit_snapshot().stages[0].usage
    assert stage is not None
    assert stage.cost == pytest.approx(0.825 + 1.5)  # the unlisted call is not in it...
    assert stage.unpriced == 1  # ...and is counted as such
