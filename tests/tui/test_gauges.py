"""Rate limits, concurrency and usage as the app words them, on hand-built records.

Issue 21 ("In the app"): per limit, what was used of each cap, 429s per minute and a
cool-down countdown; per stage, its concurrency (`13/24`), rate-limited retries,
timeouts and tokens; workers waiting said in words for each reason.
"""

from __future__ import annotations

import math

import pytest

from antflow.runstream.records import (
    LimitRow,
    PipelineStarted,
    Snapshot,
    StageConfig,
    StageLimits,
    StageRow,
    Usage,
    WorkerRow,
)
from antflow_tui.gauges import (
    concurrency_text,
    concurrency_words,
    cooldown_left,
    gauge_bar,
    limit_line,
    limit_lines,
    newest_limits,
    next_concurrency,
    tokens_cell,
    usage_words,
    waiting_words,
)
from antflow_tui.present import STAGE_COLUMNS, stage_rows, stage_views, worker_cells
from antflow_tui.trends import RunHistory

NOW = 1_000.0


def llm(**fields: object) -> LimitRow:
    base: dict[str, object] = {
        "name": "fake-llm",
        "tokens_per_minute": 300_000.0,
        "tokens_last_minute": 212_400,
        "calls_last_second": 4,
        "calls_last_minute": 230,
        "rate_limited_last_minute": 4,
        "cooldown_until": NOW + 0.6,
        "waiting": 3,
    }
    base.update(fields)
    return LimitRow(**base)  # type: ignore[arg-type]


def test_a_limit_line_shows_each_cap_used_429s_and_the_cool_down() -> None:
    line = limit_line(llm(), NOW)
    assert line.plain == (
        "fake-llm  tokens 212k/300k/min ▕██████▁▁▏  calls 4/s  429s 4/min  cool-down 0.6s"
        "  3 waiting"
    )


def test_a_limit_with_call_caps_shows_a_gauge_for_each() -> None:
    row = LimitRow(
        name="openai",
        per_second=50.0,
        per_minute=500.0,
        calls_last_second=48,
        calls_last_minute=120,
    )
    assert limit_line(row, NOW).plain == (
        "openai  calls 48/50/s ▕████████▏  calls 120/500/min ▕██▁▁▁▁▁▁▏  429s 0/min"
    )


def test_a_nearly_full_gauge_is_drawn_in_the_warning_colour() -> None:
    from antflow_tui.palette import DEFAULT

    full = limit_line(llm(tokens_last_minute=290_000), NOW)
    half = limit_line(llm(tokens_last_minute=150_000), NOW)

    def bar_style(line: object) -> object:
        plain = line.plain  # type: ignore[attr-defined]
        start = plain.index("▕")
        return next(span.style for span in line.spans if span.start == start)  # type: ignore[attr-defined]

    assert bar_style(full) == DEFAULT("gauge-full")
    assert bar_style(half) == DEFAULT("gauge")


# The cool-down is the moment it ends: it counts down as the clock moves (a replay too,
# between snapshots), and is gone once over.
def test_the_cool_down_counts_down_and_ends() -> None:
    assert "cool-down 0.6s" in limit_line(llm(), NOW).plain
    assert "cool-down 0.1s" in limit_line(llm(), NOW + 0.5).plain
    assert "cool-down" not in limit_line(llm(), NOW + 0.7).plain
    assert cooldown_left(None, NOW) == 0.0
    assert cooldown_left(NOW + 90, NOW) == 90.0


def test_a_narrow_line_drops_the_least_telling_parts_first() -> None:
    row = llm()
    assert limit_line(row, NOW, 60).plain == (
        "fake-llm  tokens 212k/300k/min ▕██████▁▁▏  cool-down 0.6s"
    )
    assert limit_line(row, NOW, 77).plain == (
        "fake-llm  tokens 212k/300k/min ▕██████▁▁▏  429s 4/min  cool-down 0.6s"
    )
    assert limit_line(row, NOW, 10).cell_len <= 10


# Every number may come from a damaged file: none raises, none shows as nonsense.
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_numbers_that_are_not_finite_show_as_unknown(bad: float) -> None:
    line = limit_line(llm(cooldown_until=bad, tokens_per_minute=bad), NOW).plain
    assert "cool-down" not in line
    assert "tokens" not in line  # no cap known: no gauge
    assert "calls 4/s" in line
    usage = Usage(input_tokens=5, output_tokens=6, cost=bad)
    assert usage_words(usage) == "11 tokens (5 in, 6 out)"


def test_a_limit_name_is_shown_literally() -> None:
    line = limit_line(llm(name="[red]api[/red]\x1b[2J"), NOW)
    assert line.plain.startswith("[red]api[/red]")
    assert "\x1b" not in line.plain


def test_gauge_bars() -> None:
    assert gauge_bar(0, 100) == "▕▁▁▁▁▁▁▁▁▏"
    assert gauge_bar(1, 1_000) == "▕█▁▁▁▁▁▁▁▏"  # something used shows
    assert gauge_bar(100, 100) == "▕████████▏"
    assert gauge_bar(250, 100) == "▕████████▏"
    assert gauge_bar(5, 0) == "▕▁▁▁▁▁▁▁▁▏"


def snapshot(pipeline: int, at: float, limits: tuple[LimitRow, ...]) -> Snapshot:
    return Snapshot(
        pipeline=pipeline,
        at=at,
        running=True,
        paused=False,
        stopping=False,
        fed=0,
        processed=0,
        failed=0,
        in_flight=0,
        unfinished=0,
        limits=limits,
    )


# A limit several pipelines share comes in each one's snapshots: it shows once, as the
# newest says; past two limits, the last line counts the rest.
def test_limit_lines_show_each_limit_once_the_newest_first_seen_order() -> None:
    older = snapshot(1, 10.0, (llm(tokens_last_minute=1), LimitRow(name="search")))
    newer = snapshot(2, 11.0, (llm(tokens_last_minute=2_000),))
    rows = newest_limits([older, newer])
    assert [row.name for row in rows] == ["fake-llm", "search"]
    assert rows[0].tokens_last_minute == 2_000
    third = snapshot(3, 9.0, (LimitRow(name="db"),))
    lines = limit_lines([older, newer, third], NOW, 120)
    assert [line.plain.split()[0] for line in lines] == ["fake-llm", "+2"]
    assert limit_lines([snapshot(1, 1.0, ())], NOW, 120) == []


# ---------------------------------------------------------------------- stages


def limits(**fields: object) -> StageLimits:
    base: dict[str, object] = {"concurrency": 13, "max_concurrency": 50, "adaptive": True}
    base.update(fields)
    return StageLimits(**base)  # type: ignore[arg-type]


def test_concurrency_in_a_cell_and_in_words() -> None:
    assert concurrency_text(limits()) == "13/50"
    assert concurrency_text(None) == ""
    assert concurrency_words(limits(in_flight=11), 50) == "13 of 50 at once, adaptive"
    assert concurrency_words(limits(max_concurrency=20, adaptive=False), 50) == (
        "13 of 20 at once (set by hand; 50 workers)"
    )
    assert concurrency_words(None, 4) == "4 at once (its workers)"


# Issue 21: - asks for one call fewer than run now (an adaptive stage at 13 of 50: 12),
# + for one more than the most allowed now (51: past its workers, which the app refuses).
def test_minus_and_plus_ask_from_what_runs_and_from_the_most_allowed() -> None:
    assert next_concurrency(limits(), 50, -1) == 12
    assert next_concurrency(limits(), 50, 1) == 51
    assert next_concurrency(limits(concurrency=3, max_concurrency=3), 8, 1) == 4
    assert next_concurrency(None, 8, -1) == 7
    assert next_concurrency(None, 8, 1) == 9


def config(**fields: object) -> StageConfig:
    base: dict[str, object] = {
        "name": "Ask",
        "workers": ("Ask-W0", "Ask-W1"),
        "tasks": ("ask",),
        "retry": "per_task",
        "task_attempts": 3,
        "task_wait_seconds": 1.0,
        "stage_attempts": 1,
        "queue_capacity": 10,
    }
    base.update(fields)
    return StageConfig(**base)  # type: ignore[arg-type]


# Issue 21: a worker waiting says why, in words that read right for each reason.
def test_a_worker_waiting_says_what_for() -> None:
    stage_limits = limits(limit="fake-llm", cooldown_until=NOW + 2.5)
    shaped = config(concurrency_limits={"ask": 2})
    assert waiting_words("ask", shaped, stage_limits, NOW) == "waiting for a ask slot"
    assert waiting_words("fake-llm", config(), stage_limits, NOW) == (
        "waiting for rate limit fake-llm"
    )
    assert waiting_words("cool-down", config(), stage_limits, NOW) == (
        "cooling down after a 429 (2.5s left)"
    )
    assert waiting_words("cool-down", config(), None, NOW) == "cooling down after a 429"
    assert waiting_words("concurrency", config(), stage_limits, NOW) == (
        "waiting its turn (concurrency 13/50)"
    )
    # A recording from before issue 21 names a task: its slot, as it did then.
    assert waiting_words("fetch", None, None, NOW) == "waiting for a fetch slot"


def test_usage_in_words_and_in_a_cell() -> None:
    usage = Usage(
        input_tokens=900_000, output_tokens=312_000, cost=0.4213, model="gpt-x", reports=210
    )
    # Issue 22: the cost in US dollars (three significant digits below a dollar).
    assert usage_words(usage) == "1.2M tokens (900k in, 312k out) · $0.421 · gpt-x · 210 calls"
    assert usage_words(Usage(input_tokens=10, output_tokens=2, reports=1)) == (
        "12 tokens (10 in, 2 out)"
    )
    assert usage_words(None) == ""
    assert tokens_cell(usage) == "1.2M"
    assert tokens_cell(None) == ""


def started() -> PipelineStarted:
    return PipelineStarted(
        pipeline=1,
        at=0.0,
        stages=(config(name="Prompt", workers=("Prompt-W0",)), config()),
    )


def limited_snapshot(at: float = NOW) -> Snapshot:
    ask_limits = limits(
        concurrency=2,
        max_concurrency=2,
        rate_limited_retries=7,
        timeouts=1,
        task_timeout=8.0,
        limit="fake-llm",
        cooldown_until=NOW + 1.0,
    )
    return Snapshot(
        pipeline=1,
        at=at,
        running=True,
        paused=False,
        stopping=False,
        fed=10,
        processed=2,
        failed=0,
        in_flight=8,
        unfinished=0,
        stages=(
            StageRow(queued=0, running=0, done=10, failed=0),
            StageRow(
                queued=6,
                running=2,
                done=2,
                failed=0,
                limits=ask_limits,
                usage=Usage(input_tokens=1_000, output_tokens=234, reports=2),
            ),
        ),
        workers=(
            (WorkerRow(status="idle"),),
            (
                WorkerRow(status="busy", holding=True, item="doc-3", since=NOW - 2),
                WorkerRow(
                    status="busy",
                    holding=True,
                    item="doc-4",
                    since=NOW - 1,
                    waiting_for="cool-down",
                ),
            ),
        ),
        limits=(llm(),),
    )


# Issue 21: the stage table's limit columns, from a snapshot: concurrency, 429s, timeouts
# and tokens for the stage that has them, dashes for the others; the columns are offered
# only because some stage has them.
def test_stage_rows_carry_the_limit_columns() -> None:
    views = stage_views(started(), limited_snapshot())
    prompt, ask = stage_rows(views, {}, None)
    keys = [key for key, _ in STAGE_COLUMNS]

    def cell(row: object, key: str) -> str:
        return row.cells[keys.index(key)].plain  # type: ignore[attr-defined]

    assert [cell(ask, key) for key in ("concurrency", "rate_limited", "timeouts", "tokens")] == [
        "2/2",
        "7",
        "1",
        "1,234",
    ]
    assert [cell(prompt, key) for key in ("concurrency", "rate_limited", "timeouts")] == [
        "–",
        "–",
        "–",
    ]
    assert ask.optional == {"concurrency", "rate_limited", "timeouts", "tokens"}
    assert prompt.optional == frozenset()
    assert ask.sort_keys["rate_limited"] == 7


def test_worker_cells_say_a_cool_down_with_its_countdown() -> None:
    views = stage_views(started(), limited_snapshot())
    cells = worker_cells(views, NOW + 0.25, {})
    waiting = next(cell for cell in cells if cell.item == "doc-4")
    assert waiting.look == "waiting"
    assert waiting.status_text == "cooling down after a 429 (0.8s left)"


# Issue 21: the history the stage screen draws: the concurrency of a stage with limits,
# and each limit's tokens, calls and 429s, kept from every snapshot.
def test_run_history_keeps_concurrency_and_limit_trends() -> None:
    history = RunHistory()
    first = limited_snapshot(NOW)
    second = Snapshot(
        **{
            **{f: getattr(first, f) for f in first.__struct_fields__},
            "at": NOW + 1.0,
            "limits": (llm(tokens_last_minute=250_000, rate_limited_last_minute=6),),
        }
    )
    history.observe(started(), first)
    history.observe(started(), second)
    trend = history.trend(1, "Ask")
    assert trend is not None
    assert trend.concurrency is not None
    assert trend.concurrency.samples() == [2.0, 2.0]
    prompt = history.trend(1, "Prompt")
    assert prompt is not None
    assert prompt.concurrency is None
    limit = history.limit(1, "fake-llm")
    assert limit is not None
    assert limit.tokens.samples() == [212_400.0, 250_000.0]
    assert limit.refused.samples() == [4.0, 6.0]
    history.reset()
    assert history.limit(1, "fake-llm") is None
