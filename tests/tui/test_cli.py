"""The `antflow-tui` command in a subprocess: bad input fails with one clear message.

Every bad-input case must fail before the full-screen app starts, with exit status 2 and
no traceback of antflow_tui's own code. The happy path runs the app without a terminal
(`--exit-when-done`) and checks the summary, the exit status and the export.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from antflow import __version__
from tests.tui.recorded import RECORDINGS

if TYPE_CHECKING:
    from pathlib import Path

TIMEOUT = 60
"""Seconds a subprocess may take; a case that reached the app would hang until then."""

TWO_STAGES = """\
from antflow import Pipeline, Stage

async def double(x):
    return x * 2

pipeline = Pipeline([Stage("Double", 2, [double])])
"""


@dataclass(frozen=True, slots=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Ran:
    env = {**os.environ, "TERM": "dumb", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "antflow_tui", *args],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def assert_script_error(ran: Ran, *fragments: str) -> str:
    """Exit 2, one `antflow-tui:` message naming the problem, none of our frames."""
    assert ran.code == 2, ran.stderr
    assert ran.stdout == ""
    assert ran.stderr.startswith("antflow-tui: ")
    assert len(re.findall(r"^antflow-tui: ", ran.stderr, re.MULTILINE)) == 1
    assert "antflow_tui" not in ran.stderr
    for fragment in fragments:
        assert fragment in ran.stderr
    return ran.stderr


def assert_usage_error(ran: Ran, *fragments: str) -> None:
    """Exit 2 with click's usage message: one `Error:` line, no traceback."""
    assert ran.code == 2, ran.stderr
    assert ran.stdout == ""
    assert ran.stderr.count("Error: ") == 1
    assert "Traceback" not in ran.stderr
    assert f"antflow_tui{os.sep}" not in ran.stderr
    for fragment in fragments:
        assert fragment in ran.stderr


# ---------------------------------------------------------------------- the file


def test_missing_file(tmp_path: Path) -> None:
    assert_script_error(run_cli(tmp_path, "nowhere.py"), "no such file: nowhere.py")


def test_a_directory(tmp_path: Path) -> None:
    (tmp_path / "pkg.py").mkdir()
    assert_script_error(run_cli(tmp_path, "pkg.py"), "pkg.py is a directory")


def test_not_a_python_file(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "pipeline = 1\n")
    assert_script_error(run_cli(tmp_path, "notes.txt"), "notes.txt is not a Python file")


def test_syntax_error_shows_file_line_message_and_the_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "broken.py",
        """\
        x = 1
        y = 2
        z = = 3
        """,
    )
    message = assert_script_error(run_cli(tmp_path, "broken.py"), "syntax error")
    assert "broken.py" in message
    assert "line 3" in message
    assert "invalid syntax" in message
    assert "z = = 3" in message
    assert "Traceback" not in message


def test_exception_while_importing_shows_the_scripts_own_traceback(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "explodes.py",
        """\
        import json

        def load_settings():
            raise RuntimeError("settings.toml is missing")

        SETTINGS = load_settings()
        """,
    )
    message = assert_script_error(
        run_cli(tmp_path, "explodes.py"),
        "explodes.py raised an exception while being imported",
        "RuntimeError: settings.toml is missing",
    )
    assert f'File "{script}", line 6, in <module>' in message
    assert f'File "{script}", line 4, in load_settings' in message
    assert "importlib" not in message
    assert message.count("Traceback (most recent call last)") == 1


def test_sys_exit_while_importing(tmp_path: Path) -> None:
    write(tmp_path, "exits.py", "import sys\nsys.exit(3)\n")
    assert_script_error(run_cli(tmp_path, "exits.py"), "sys.exit(3)", '__name__ == "__main__"')


# ---------------------------------------------------------------------- the contract

CONTRACT_WORDS = ("pipeline", "items", "async def main()")


def test_nothing_to_run_explains_the_contract(tmp_path: Path) -> None:
    write(tmp_path, "empty.py", "x = 1\n")
    assert_script_error(run_cli(tmp_path, "empty.py"), "empty.py defines none of", *CONTRACT_WORDS)


def test_pipeline_without_items(tmp_path: Path) -> None:
    write(tmp_path, "half.py", TWO_STAGES)
    assert_script_error(
        run_cli(tmp_path, "half.py"), "defines `pipeline` but no `items`", *CONTRACT_WORDS
    )


def test_items_without_pipeline(tmp_path: Path) -> None:
    write(tmp_path, "half.py", "items = [1, 2, 3]\n")
    assert_script_error(
        run_cli(tmp_path, "half.py"), "defines `items` but no `pipeline`", *CONTRACT_WORDS
    )


def test_sync_main(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sync_main.py",
        """\
        def main():
            print("hello")
        """,
    )
    assert_script_error(
        run_cli(tmp_path, "sync_main.py"), "not an async function", "async def main():"
    )


def test_script_name_with_a_missing_name(tmp_path: Path) -> None:
    write(tmp_path, "job.py", TWO_STAGES + "items = [1]\n")
    assert_script_error(run_cli(tmp_path, "job.py:nope"), "job.py has no attribute 'nope'")


def test_script_name_that_is_not_runnable(tmp_path: Path) -> None:
    write(tmp_path, "job.py", TWO_STAGES + "items = [1]\nlimit = 5\n")
    assert_script_error(
        run_cli(tmp_path, "job.py:limit"), "job.py:limit is of type int", "not a Pipeline"
    )


def test_items_not_iterable(tmp_path: Path) -> None:
    write(tmp_path, "bad_items.py", TWO_STAGES + "items = 5\n")
    assert_script_error(run_cli(tmp_path, "bad_items.py"), "`items`", "cannot be iterated")


def test_items_factory_returning_something_not_iterable(tmp_path: Path) -> None:
    write(tmp_path, "bad_items.py", TWO_STAGES + "def items():\n    return None\n")
    assert_script_error(run_cli(tmp_path, "bad_items.py"), "`items`", "cannot be iterated")


def test_pipeline_that_is_not_a_pipeline(tmp_path: Path) -> None:
    write(tmp_path, "not_pipeline.py", "pipeline = 42\nitems = [1, 2]\n")
    assert_script_error(run_cli(tmp_path, "not_pipeline.py"), "`pipeline`", "not a Pipeline")


def test_pipeline_factory_returning_something_else(tmp_path: Path) -> None:
    write(tmp_path, "factory.py", "def pipeline():\n    return 'oops'\nitems = [1]\n")
    assert_script_error(run_cli(tmp_path, "factory.py"), "`pipeline()`", "not a Pipeline")


def test_pipeline_factory_that_raises_shows_its_traceback(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "factory.py",
        """\
        def pipeline():
            raise KeyError("API_TOKEN")

        items = [1, 2]
        """,
    )
    message = assert_script_error(
        run_cli(tmp_path, "factory.py"),
        "`pipeline()` in factory.py raised",
        "KeyError: 'API_TOKEN'",
    )
    assert f'File "{script}", line 2, in pipeline' in message


def test_pipeline_factory_that_needs_arguments(tmp_path: Path) -> None:
    write(tmp_path, "factory.py", "def pipeline(config):\n    pass\nitems = [1]\n")
    assert_script_error(run_cli(tmp_path, "factory.py"), "must take no arguments")


# ---------------------------------------------------------------------- options


def test_interval_zero(tmp_path: Path) -> None:
    write(tmp_path, "job.py", TWO_STAGES + "items = [1]\n")
    assert_usage_error(run_cli(tmp_path, "job.py", "--interval", "0"), "--interval")


def test_export_into_a_missing_folder(tmp_path: Path) -> None:
    """Regression: an unwritable --export path ended in our own traceback after the run."""
    write(tmp_path, "job.py", TWO_STAGES + "items = [1]\n")
    ran = run_cli(tmp_path, "job.py", "--export", str(tmp_path / "nowhere" / "out.jsonl"))
    assert_usage_error(ran, "does not exist")


def test_log_lines_zero(tmp_path: Path) -> None:
    write(tmp_path, "job.py", TWO_STAGES + "items = [1]\n")
    assert_usage_error(run_cli(tmp_path, "job.py", "--log-lines", "0"), "--log-lines")


@pytest.mark.parametrize(
    ("keymap", "said"),
    [
        ("pause", "is not ID=KEY"),
        ("nosuchbinding=x", "no binding has the id 'nosuchbinding'"),
        # Issue 17.7: pause=q took quit's key without a word.
        ("pause=q", "'pause' and 'quit' would both be 'q'"),
    ],
)
def test_bad_keymap(tmp_path: Path, keymap: str, said: str) -> None:
    write(tmp_path, "job.py", TWO_STAGES + "items = [1]\n")
    assert_usage_error(run_cli(tmp_path, "job.py", "--keymap", keymap), "--keymap", said)


def test_no_script_given(tmp_path: Path) -> None:
    assert_usage_error(run_cli(tmp_path), "SCRIPT")


def test_version(tmp_path: Path) -> None:
    ran = run_cli(tmp_path, "--version")
    assert ran.code == 0
    assert ran.stdout.strip() == f"antflow-tui, version {__version__}"


def test_help_explains_the_contract_and_exit_statuses(tmp_path: Path) -> None:
    ran = run_cli(tmp_path, "--help")
    assert ran.code == 0
    text = " ".join(ran.stdout.split())
    for word in ("pipeline", "items", "async def main()", "SCRIPT:NAME"):
        assert word in text
    assert "Exit status: 0 when every item fed completed or was skipped and the script" in text
    assert "ended normally" in text
    assert "1 when any failed, was left unfinished or was not fed" in text
    assert "2 for usage or script errors" in text
    for option in (
        "--interval",
        "--paused",
        "--log-lines",
        "--export",
        "--retry-from",
        "--exit-when-done",
    ):
        assert option in text


# Issue 19.6: the commands were dispatched by hand: --help did not list them.
def test_help_lists_the_commands_after_the_scripts_options(tmp_path: Path) -> None:
    ran = run_cli(tmp_path, "-h")
    assert ran.code == 0
    assert ran.stdout.startswith("Usage: antflow-tui [OPTIONS] SCRIPT[:NAME]\n")
    assert "antflow-tui COMMAND [ARGS]..." in ran.stdout
    commands = ran.stdout.split("\nCommands:\n", 1)[1]
    listed = [line.split()[0] for line in commands.splitlines() if line.strip()]
    # Issue 20: runs; issue 22.1: compare A B.
    assert listed == ["replay", "runs", "compare", "attach", "web", "export-trace"]
    assert ran.stdout.index("--interval") < ran.stdout.index("Commands:")


# Issue 19.6: a script named like a command could not be run.
@pytest.mark.parametrize("name", ["replay", "attach", "web", "export-trace", "compare", "runs"])
def test_a_script_named_like_a_command_runs_as_a_path(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, TWO_STAGES + "items = [1, 2]\n")
    ran = run_cli(tmp_path, f"./{name}", "--progress-every", "0")
    assert ran.code == 0, ran.stderr
    assert "completed 2" in ran.stdout


def test_a_command_with_an_option_before_the_script_still_runs_the_script(
    tmp_path: Path,
) -> None:
    write(tmp_path, "job.py", TWO_STAGES + "items = [1]\n")
    ran = run_cli(tmp_path, "--progress-every", "0", "job.py")
    assert ran.code == 0, ran.stderr
    assert "completed 1" in ran.stdout


# ---------------------------------------------------------------------- the happy path

FIVE_ITEMS_ONE_FAILS = """\
from antflow import Pipeline, Stage

async def double(x):
    print("doubling", x)
    if x == 3:
        raise ValueError("three is not allowed")
    return x * 2

async def add_one(x):
    return x + 1

pipeline = Pipeline(
    [
        Stage("Double", 2, [double], task_attempts=1, task_wait_seconds=0),
        Stage("AddOne", 2, [add_one]),
    ]
)
items = list(range(5))
"""


def test_runs_without_a_terminal_and_exports(tmp_path: Path) -> None:
    write(tmp_path, "job.py", FIVE_ITEMS_ONE_FAILS)
    out = tmp_path / "out.jsonl"
    ran = run_cli(tmp_path, "job.py", "--exit-when-done", "--export", str(out))
    assert ran.code == 1, ran.stderr  # one item failed
    assert "Traceback" not in ran.stderr
    # With no screen (issue 17.5) the script prints to stdout as under python; the
    # summary is the last line.
    *printed, summary = ran.stdout.strip().splitlines()
    assert sorted(printed) == [f"doubling {n}" for n in range(5)]
    assert "items 5  completed 4  failed 1  skipped 0  unfinished 0" in summary
    header, *lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert header["antflow_export"] == 1
    assert (header["items"], header["completed"], header["failed"]) == (5, 4, 1)
    assert sorted((line["id"], line["status"]) for line in lines) == [
        (0, "completed"),
        (1, "completed"),
        (2, "completed"),
        (3, "failed"),
        (4, "completed"),
    ]
    values = {line["id"]: line.get("value") for line in lines}
    assert values[4] == 9
    failed = next(line for line in lines if line["status"] == "failed")
    assert failed["stage"] == "Double"
    assert failed["error_type"] == "ValueError"
    assert failed["error"] == "three is not allowed"


def test_async_main_runs_and_exits_zero(tmp_path: Path) -> None:
    write(
        tmp_path,
        "main_job.py",
        """\
        import asyncio

        from antflow import Pipeline, Stage

        async def square(x):
            return x * x

        async def main():
            pipeline = Pipeline([Stage("Square", 3, [square])])
            results = await pipeline.run(range(6))
            assert len(results) == 6

        if __name__ == "__main__":
            asyncio.run(main())
        """,
    )
    ran = run_cli(tmp_path, "main_job.py", "--exit-when-done")
    assert ran.code == 0, ran.stderr
    assert "items 6  completed 6  failed 0  skipped 0  unfinished 0" in ran.stdout


def test_async_main_that_raises_exits_two_with_its_traceback(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "main_fails.py",
        """\
        async def main():
            raise LookupError("no such bucket")
        """,
    )
    ran = run_cli(tmp_path, "main_fails.py", "--exit-when-done")
    assert ran.code == 2, ran.stderr
    assert "LookupError: no such bucket" in ran.stderr
    assert f'File "{script}", line 2, in main' in ran.stderr
    assert f"antflow_tui{os.sep}" not in ran.stderr


# ---------------------------------------------------------------------- --retry-from

FAILS_IN_SECOND_STAGE = """\
import os

from antflow import Pipeline, Stage

FIXED = os.environ.get("FIXED") == "1"
SEEN = os.environ.get("SEEN_LOG")


class BadRow(ValueError):
    pass


async def fetch(n):
    if SEEN:
        with open(SEEN, "a") as log:
            log.write(f"fetch {n}\\n")
    return {"n": n, "page": f"<p>{n}</p>"}


async def parse(row):
    if SEEN:
        with open(SEEN, "a") as log:
            log.write(f"parse {row['n']}\\n")
    if row["n"] % 3 == 0 and not FIXED:
        raise BadRow(f"row {row['n']} is bad")
    return row["n"] * 10


pipeline = Pipeline(
    [Stage("Fetch", 2, [fetch]), Stage("Parse", 2, [parse], task_attempts=1)]
)
items = list(range(7))
"""


def test_export_then_retry_from_feeds_only_the_failures_where_they_failed(tmp_path: Path) -> None:
    write(tmp_path, "job.py", FAILS_IN_SECOND_STAGE)
    night = tmp_path / "night.jsonl"
    ran = run_cli(tmp_path, "job.py", "--exit-when-done", "--export", str(night))
    assert ran.code == 1, ran.stderr
    header, *lines = [json.loads(line) for line in night.read_text("utf-8").splitlines()]
    assert (header["completed"], header["failed"]) == (4, 3)
    failed = sorted((line for line in lines if line["status"] == "failed"), key=lambda x: x["id"])
    assert [line["id"] for line in failed] == [0, 3, 6]
    assert failed[1]["stage"] == "Parse"
    assert failed[1]["value"] == {"n": 3, "page": "<p>3</p>"}
    assert failed[1]["input"] == 3
    assert failed[1]["error_type"] == "job.BadRow", "the script's own module name"
    assert "job.BadRow: row 3 is bad" in failed[1]["traceback"]

    seen = tmp_path / "seen.log"
    again = tmp_path / "again.jsonl"
    env = {"FIXED": "1", "SEEN_LOG": str(seen)}
    ran = run_cli(
        tmp_path,
        "job.py",
        "--retry-from",
        str(night),
        "--export",
        str(again),
        "--exit-when-done",
        env=env,
    )
    assert ran.code == 0, ran.stderr
    assert "items 3  completed 3  failed 0" in ran.stdout
    assert sorted(seen.read_text().splitlines()) == ["parse 0", "parse 3", "parse 6"], (
        "only the failed items, straight into the stage where they failed"
    )
    _, *lines = [json.loads(line) for line in again.read_text("utf-8").splitlines()]
    assert sorted((line["id"], line["value"]) for line in lines) == [(0, 0), (3, 30), (6, 60)]


def test_retry_from_lists_the_lines_it_cannot_feed_again(tmp_path: Path) -> None:
    write(tmp_path, "job.py", FAILS_IN_SECOND_STAGE)
    export = tmp_path / "old.jsonl"
    records = [
        {"antflow_export": 1},
        {"pipeline": "pipeline", "status": "failed", "id": 1, "stage": "Parse",
         "value": "<Row 1>", "value_is_repr": True},
        {"pipeline": "pipeline", "status": "failed", "id": 2, "stage": "Gone", "value": 2},
        {"pipeline": "pipeline", "status": "failed", "id": 3, "stage": "Parse",
         "value": {"n": 4, "page": ""}},
    ]  # fmt: skip
    export.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    ran = run_cli(tmp_path, "job.py", "--retry-from", str(export), "--exit-when-done")
    assert ran.code == 1, "items that could not be fed again are left over"
    assert "line 2 (id 1, failed): its value was written as a repr (not JSON)" in ran.stderr
    assert "line 3 (id 2, failed): stage 'Gone' is not in this pipeline" in ran.stderr
    assert "items 1  completed 1  failed 0" in ran.stdout


TUPLE_IDS = """\
import os

from antflow import Pipeline, Stage

FIXED = os.environ.get("FIXED") == "1"


async def parse(n):
    if n % 2 and not FIXED:
        raise ValueError(f"odd {n}")
    return n


pipeline = Pipeline([Stage("Parse", 2, [parse], task_attempts=1)])
items = [{"id": ("page", n), "value": n} for n in range(5)]
"""


# Issue 18.13: tuple ids came back as arrays and --retry-from exited 2 on the first one,
# having fed nothing; a line it cannot feed is skipped with its reason, never the rest.
def test_retry_from_feeds_tuple_ids_back_and_skips_hostile_lines(tmp_path: Path) -> None:
    write(tmp_path, "job.py", TUPLE_IDS)
    night = tmp_path / "night.jsonl"
    ran = run_cli(tmp_path, "job.py", "--exit-when-done", "--export", str(night))
    assert ran.code == 1, ran.stderr
    failed = [json.loads(x) for x in night.read_text("utf-8").splitlines()[1:]]
    failed = sorted((x for x in failed if x["status"] == "failed"), key=lambda x: x["id"])
    assert [(x["id"], x["id_is_tuple"]) for x in failed] == [
        (["page", 1], True),
        (["page", 3], True),
    ]
    hostile = [
        {"status": "failed", "id": ["page", 1], "stage": "Parse", "value": 1},
        {"status": "failed", "id": {"page": 5}, "stage": "Parse", "value": 5},
        {"status": "failed", "id": 7, "stage": ["Parse"], "value": 7},
    ]
    hostile = [{"pipeline": "pipeline", **line} for line in hostile]
    with night.open("a", encoding="utf-8") as out:
        out.writelines(json.dumps(line) + "\n" for line in hostile)

    again = tmp_path / "again.jsonl"
    ran = run_cli(
        tmp_path,
        "job.py",
        "--retry-from",
        str(night),
        "--export",
        str(again),
        "--exit-when-done",
        env={"FIXED": "1"},
    )
    assert ran.code == 1, "lines that could not be fed are left over"
    assert "items 2  completed 2  failed 0" in ran.stdout
    assert "3 lines not fed again" in ran.stderr
    assert "(id ('page', 1), failed): its id is line " in ran.stderr
    assert "(id {'page': 5}, failed): its id is an object" in ran.stderr
    assert "(id 7, failed): its stage ['Parse'] is not a stage name" in ran.stderr
    lines = [json.loads(x) for x in again.read_text("utf-8").splitlines()[1:]]
    assert sorted((x["id"], x["status"]) for x in lines) == [
        (["page", 1], "completed"),
        (["page", 3], "completed"),
    ]


@pytest.mark.parametrize(
    ("content", "said"),
    [("not an export\n", "is not an antflow-tui export"), ("", "is empty")],
)
def test_retry_from_a_file_that_is_not_an_export(tmp_path: Path, content: str, said: str) -> None:
    write(tmp_path, "job.py", FAILS_IN_SECOND_STAGE)
    (tmp_path / "bad.jsonl").write_text(content, encoding="utf-8")
    assert_script_error(run_cli(tmp_path, "job.py", "--retry-from", "bad.jsonl"), said)


def test_retry_from_a_missing_file(tmp_path: Path) -> None:
    write(tmp_path, "job.py", FAILS_IN_SECOND_STAGE)
    assert_usage_error(run_cli(tmp_path, "job.py", "--retry-from", "nowhere.jsonl"), "nowhere")


def test_retry_from_with_a_main_script_says_how_to_do_it_there(tmp_path: Path) -> None:
    write(tmp_path, "main_job.py", "async def main():\n    pass\n")
    (tmp_path / "old.jsonl").write_text('{"antflow_export": 1}\n', encoding="utf-8")
    assert_script_error(
        run_cli(tmp_path, "main_job.py", "--retry-from", "old.jsonl"),
        "--retry-from needs a script that defines `pipeline` and `items`",
        "feed_export",
    )


def test_retry_from_an_export_with_nothing_left_to_do(tmp_path: Path) -> None:
    write(tmp_path, "job.py", FAILS_IN_SECOND_STAGE)
    done = [{"antflow_export": 1}, {"pipeline": "p", "status": "completed", "id": 1, "value": 2}]
    (tmp_path / "done.jsonl").write_text("\n".join(json.dumps(r) for r in done) + "\n", "utf-8")
    ran = run_cli(tmp_path, "job.py", "--retry-from", "done.jsonl")
    assert ran.code == 0
    assert "has no failed, unfinished or never-fed item to feed again" in ran.stdout


# ---------------------------------------------------------------------- replay


def test_replay_of_a_newer_recording_is_refused_with_exit_two(tmp_path: Path) -> None:
    newer = tmp_path / "newer.jsonl"
    newer.write_text(
        '{"record":"header","format":"antflow-run","version":7,"antflow":"7.1","started_at":0}\n'
    )
    assert_script_error(run_cli(tmp_path, "replay", str(newer)), "version 7", "antflow 7.1")


@pytest.mark.parametrize(
    ("content", "says"), [(None, "no such file"), ("hello\n", "not an antflow recording")]
)
def test_replay_of_what_is_not_a_recording_exits_two(
    tmp_path: Path, content: str | None, says: str
) -> None:
    path = tmp_path / "x.jsonl"
    if content is not None:
        path.write_text(content)
    assert_script_error(run_cli(tmp_path, "replay", str(path)), says)


def test_replay_help_names_the_scrubber_keys(tmp_path: Path) -> None:
    ran = run_cli(tmp_path, "replay", "--help")
    assert ran.code == 0
    assert "Usage: antflow-tui replay [OPTIONS] FILE" in ran.stdout
    for key in ("space", "[ ]", "< >", "seek"):
        assert key in ran.stdout


def test_record_values_needs_record(tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text("pipeline = None\nitems = []\n")
    ran = run_cli(tmp_path, "s.py", "--record-values")
    assert ran.code == 2
    assert "--record-values" in ran.stderr
    assert "needs --record FILE" in ran.stderr


# ---------------------------------------------------------------------- export-trace


def test_export_trace_writes_a_slice_per_task_attempt_of_the_recording(tmp_path: Path) -> None:
    """Issue 14: `antflow-tui export-trace RECORDING -o trace.json` (Perfetto opens it)."""
    from antflow.runstream.fileformat import Recording
    from antflow.runstream.records import Event

    source = RECORDINGS / "failures.jsonl"
    ran = run_cli(tmp_path, "export-trace", str(source), "-o", "trace.json")
    assert ran.code == 0, ran.stderr
    trace = json.loads((tmp_path / "trace.json").read_text(encoding="utf-8"))
    events = trace["traceEvents"]
    lanes = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    slices = [e for e in events if e["ph"] == "X"]
    assert f"Wrote {len(slices)} task attempts to trace.json" in ran.stdout
    with Recording.open(source) as recording:
        origin = recording.started_at
        recorded = [
            record
            for record in recording.records()
            if isinstance(record, Event) and record.kind in ("complete", "retry", "fail")
        ]
        workers = {w for stage in recording.pipelines()[0].stages for w in stage.workers}
    assert set(lanes.values()) == workers
    assert len(slices) == len(recorded)
    for event, drawn in zip(recorded, slices, strict=True):
        assert lanes[(drawn["pid"], drawn["tid"])] == event.worker
        assert drawn["name"] == event.task
        assert drawn["args"]["item"] == event.item
        assert drawn["args"]["outcome"] == event.kind
        assert drawn["ts"] + drawn["dur"] == pytest.approx((event.at - origin) * 1e6)
        assert ("error" in drawn["args"]) == (event.kind != "complete")
    failed = [s for s in slices if s["args"]["outcome"] == "fail"]
    assert {s["args"]["item"] for s in failed} == {"page-3", "page-5"}
    assert all(s["cname"] == "terrible" for s in failed)


def test_export_trace_of_what_is_not_a_recording_exits_two(tmp_path: Path) -> None:
    assert_script_error(
        run_cli(tmp_path, "export-trace", "missing.jsonl", "-o", "t.json"), "no such file"
    )
    (tmp_path / "x.jsonl").write_text("hello\n")
    assert_script_error(
        run_cli(tmp_path, "export-trace", "x.jsonl", "-o", "t.json"), "not an antflow recording"
    )
    assert_usage_error(run_cli(tmp_path, "export-trace", "x.jsonl"), "-o")


def test_export_trace_never_writes_over_its_recording(tmp_path: Path) -> None:
    recording = tmp_path / "run.jsonl"
    recording.write_bytes((RECORDINGS / "failures.jsonl").read_bytes())
    before = recording.read_bytes()
    ran = run_cli(tmp_path, "export-trace", "run.jsonl", "-o", "./run.jsonl")
    assert_script_error(ran, "is the recording itself")
    assert recording.read_bytes() == before


def test_export_trace_that_cannot_be_written_says_why(tmp_path: Path) -> None:
    source = str(RECORDINGS / "failures.jsonl")
    assert_script_error(
        run_cli(tmp_path, "export-trace", source, "-o", "/dev/full"), "cannot write the trace"
    )


def test_export_trace_of_a_damaged_recording_writes_what_it_can_read(tmp_path: Path) -> None:
    lines = (RECORDINGS / "failures.jsonl").read_bytes().splitlines(keepends=True)
    damaged = next(i for i, line in enumerate(lines) if i > 3 and line.startswith(b"["))
    lines[damaged] = lines[damaged][: len(lines[damaged]) // 2] + b"\n"  # a broken batch
    (tmp_path / "run.jsonl").write_bytes(b"".join(lines))
    ran = run_cli(tmp_path, "export-trace", "run.jsonl", "-o", "trace.json")
    assert ran.code == 0, ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    assert "is incomplete" in ran.stdout + ran.stderr
    trace = json.loads((tmp_path / "trace.json").read_text(encoding="utf-8"))
    assert trace["traceEvents"]


def test_export_trace_to_standard_output_redirected_to_a_file(tmp_path: Path) -> None:
    # /dev/stdout is a link: written through (not replaced), the words on standard error.
    source = str(RECORDINGS / "failures.jsonl")
    with (tmp_path / "trace.json").open("w") as out:
        ran = subprocess.run(
            [sys.executable, "-m", "antflow_tui", "export-trace", source, "-o", "/dev/stdout"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            check=False,
        )
    assert ran.returncode == 0, ran.stderr
    assert "Wrote" in ran.stderr
    trace = json.loads((tmp_path / "trace.json").read_text(encoding="utf-8"))
    assert any(event["ph"] == "X" for event in trace["traceEvents"])
    assert os.path.islink("/dev/stdout"), "still the link it was"


# ---------------------------------------------------------------------- cost (issue 22)

REPORTS_USAGE = """\
from antflow import Pipeline, Stage, set_task_usage

async def ask(x):
    set_task_usage(input_tokens=100, output_tokens=50, model="fake-mini")
    return x

pipeline = Pipeline([Stage("Ask", 2, [ask], max_tokens=150)])
items = list(range(4))
"""

PRICES = """\
[models."fake-mini"]
input_per_million = 40.0
output_per_million = 120.0
"""


# Issue 22: a price file that cannot be used is one clear message, exit 2.
@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "nowhere.toml"),
        ("[models\n", "prices.toml"),
        ('[models."m"]\ninput_per_million = -1\noutput_per_million = 1\n', "prices.toml"),
    ],
)
def test_a_bad_price_file(tmp_path: Path, content: str | None, said: str) -> None:
    write(tmp_path, "job.py", REPORTS_USAGE)
    name = "nowhere.toml"
    if content is not None:
        name = "prices.toml"
        write(tmp_path, name, content)
    assert_script_error(run_cli(tmp_path, "job.py", "--prices", name), said)


# Issue 22: a bad ANTFLOW_PRICES is the same one message (not a traceback from the
# script's first Pipeline).
def test_a_bad_price_file_from_the_environment(tmp_path: Path) -> None:
    write(tmp_path, "job.py", REPORTS_USAGE)
    write(tmp_path, "prices.toml", "[models\n")
    ran = run_cli(tmp_path, "job.py", env={"ANTFLOW_PRICES": "prices.toml"})
    assert "Traceback" not in ran.stderr
    assert_script_error(ran, "ANTFLOW_PRICES: price file prices.toml, line 1: not valid TOML")


# Issue 22: a budget that is no amount is a usage error naming the option, exit 2.
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--budget-usd", "0"),
        ("--budget-usd", "-1"),
        ("--budget-usd", "nan"),
        ("--budget-usd", "inf"),
        ("--budget-usd", "lots"),
        ("--budget-tokens", "0"),
        ("--budget-tokens", "1.5"),
    ],
)
def test_a_bad_budget(tmp_path: Path, option: str, value: str) -> None:
    write(tmp_path, "job.py", REPORTS_USAGE)
    assert_usage_error(run_cli(tmp_path, "job.py", option, value), option)


# Issue 22: --prices prices the run's usage: the summary and the export say its cost;
# a budget it stays under changes nothing.
def test_prices_and_a_budget_from_the_command_line(tmp_path: Path) -> None:
    write(tmp_path, "job.py", REPORTS_USAGE)
    write(tmp_path, "prices.toml", PRICES)
    out = tmp_path / "out.jsonl"
    ran = run_cli(
        tmp_path,
        *("job.py", "--prices", "prices.toml", "--budget-usd", "5", "--budget-tokens", "10000"),
        *("--exit-when-done", "--export", str(out)),
    )
    assert ran.code == 0, ran.stderr
    summary = ran.stdout.strip().splitlines()[-1]
    assert "items 4  completed 4" in summary
    assert "cost $0.04 (600 tokens)" in summary
    head, *lines = (json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())
    assert head["usage"]["input_tokens"] == 400
    assert round(head["usage"]["cost"], 6) == 0.04
    # Each item's line says what it used: the run's usage item by item.
    assert sorted(line["id"] for line in lines) == [0, 1, 2, 3]
    for line in lines:
        assert (line["usage"]["input_tokens"], line["usage"]["output_tokens"]) == (100, 50)
        assert round(line["usage"]["cost"], 6) == 0.01
