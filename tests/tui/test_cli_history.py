"""The run history from the command line (issue 20, the app's side), in a subprocess:
every run of `antflow-tui SCRIPT` kept unless --no-history, --resume and
--accept-changes, `runs --json`, `runs --prune`, `replay last`, and a history that cannot
be written (one warning, the run goes on)."""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any

from tests.tui.test_cli import assert_script_error, assert_usage_error, run_cli, write

if TYPE_CHECKING:
    from pathlib import Path

# Item 3 fails until the file `fixed` is there: a first run fails it, a resume after the
# fix runs only it again (the rest completed).
FAILS_UNTIL_FIXED = """\
from pathlib import Path

from antflow import Pipeline, Stage

async def double(x):
    if x == 3 and not Path("fixed").exists():
        raise ValueError("three is not allowed yet")
    print("doubled", x)
    return x * 2

pipeline = Pipeline([Stage("{stage}", 2, [double], task_attempts=1, task_wait_seconds=0)])
items = list(range(5))
"""

RESUMED = re.compile(r"done earlier 4 .* resumed from \d{4}-\d\d-\d\d \d\d:\d\d$")


def env_of(home: Path) -> dict[str, str]:
    return {"ANTFLOW_HOME": str(home)}


def runs_json(tmp_path: Path, home: Path) -> list[dict[str, Any]]:
    ran = run_cli(tmp_path, "runs", "--json", env=env_of(home))
    assert ran.code == 0, ran.stderr
    return [json.loads(line) for line in ran.stdout.splitlines()]


def job(tmp_path: Path, stage: str = "Double") -> Path:
    return write(tmp_path, "job.py", FAILS_UNTIL_FIXED.replace("{stage}", stage))


# Issue 20.1: every run the app starts is kept (screen or not); `runs --json` lists it.
def test_a_run_is_kept_and_listed_as_json(tmp_path: Path) -> None:
    home = tmp_path / "history"
    job(tmp_path)
    ran = run_cli(tmp_path, "job.py", "--exit-when-done", env=env_of(home))
    assert ran.code == 1, ran.stderr
    (run,) = runs_json(tmp_path, home)
    assert run["script"] == "job.py"
    assert run["script_path"] == str(tmp_path / "job.py")
    assert run["status"] == "failed"
    assert (run["fed"], run["done"], run["failed"], run["done_earlier"]) == (5, 4, 1, 0)
    assert run["resumed_from"] is None
    assert os.path.exists(run["path"])


# Issue 20.1: --no-history keeps nothing.
def test_no_history_keeps_nothing(tmp_path: Path) -> None:
    home = tmp_path / "history"
    job(tmp_path)
    ran = run_cli(tmp_path, "job.py", "--exit-when-done", "--no-history", env=env_of(home))
    assert ran.code == 1, ran.stderr
    assert runs_json(tmp_path, home) == []


# Issue 20.4: --resume runs only what the run resumed did not complete: the summary, the
# export and the run list count the rest as done earlier, and say what was resumed.
def test_resume_runs_only_what_did_not_complete(tmp_path: Path) -> None:
    home = tmp_path / "history"
    job(tmp_path)
    first = run_cli(tmp_path, "job.py", "--exit-when-done", env=env_of(home))
    assert first.code == 1, first.stderr
    (tmp_path / "fixed").touch()
    out = tmp_path / "out.jsonl"
    ran = run_cli(
        tmp_path, "job.py", "--exit-when-done", "--resume", "--export", str(out), env=env_of(home)
    )
    assert ran.code == 0, ran.stderr
    *printed, summary = ran.stdout.strip().splitlines()
    assert printed == ["doubled 3"]
    assert "items 5  completed 1  failed 0" in summary
    assert RESUMED.search(summary), summary
    header = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert (header["items"], header["completed"], header["done_earlier"]) == (5, 1, 4)
    newest, older = runs_json(tmp_path, home)
    assert newest["resumed_from"] == older["id"]
    assert (newest["status"], newest["done"], newest["done_earlier"]) == ("finished", 1, 4)


# Issue 20.4: a resume of a run of another pipeline is refused (exit 2, what differs);
# --accept-changes goes on.
def test_a_changed_pipeline_is_refused_unless_changes_are_accepted(tmp_path: Path) -> None:
    home = tmp_path / "history"
    job(tmp_path)
    assert run_cli(tmp_path, "job.py", "--exit-when-done", env=env_of(home)).code == 1
    job(tmp_path, stage="Triple")
    refused = run_cli(tmp_path, "job.py", "--exit-when-done", "--resume", env=env_of(home))
    said = assert_script_error(refused, "--accept-changes")
    assert "Double" in said
    assert "Triple" in said
    (tmp_path / "fixed").touch()
    ran = run_cli(
        tmp_path, "job.py", "--exit-when-done", "--resume", "--accept-changes", env=env_of(home)
    )
    assert ran.code == 0, ran.stderr
    assert "done earlier 4" in ran.stdout


# Issue 20.4: --resume with nothing kept names what is wrong; --accept-changes alone is a
# usage error.
def test_resume_with_nothing_kept_and_accept_changes_alone(tmp_path: Path) -> None:
    home = tmp_path / "history"
    job(tmp_path)
    assert_script_error(
        run_cli(tmp_path, "job.py", "--exit-when-done", "--resume", env=env_of(home))
    )
    assert_usage_error(
        run_cli(tmp_path, "job.py", "--exit-when-done", "--accept-changes", env=env_of(home)),
        "--accept-changes",
    )


# Issue 20.3: `replay last` names the newest kept run; with none kept, one clear message.
def test_replay_last_with_nothing_kept(tmp_path: Path) -> None:
    home = tmp_path / "history"
    assert_script_error(
        run_cli(tmp_path, "replay", "last", env=env_of(home)), "replay last: no run in"
    )


# Issue 20.1: `runs --prune --keep 1` deletes the older runs and says which.
def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    home = tmp_path / "history"
    job(tmp_path)
    for _ in range(3):
        run_cli(tmp_path, "job.py", "--exit-when-done", env=env_of(home))
    before = runs_json(tmp_path, home)
    assert len(before) == 3
    ran = run_cli(tmp_path, "runs", "--prune", "--keep", "1", env=env_of(home))
    assert ran.code == 0, ran.stderr
    assert ran.stdout.startswith("Deleted 2 runs")
    assert [run["id"] for run in runs_json(tmp_path, home)] == [before[0]["id"]]
    assert_usage_error(run_cli(tmp_path, "runs", "--keep", "1", env=env_of(home)), "--prune")


# Issue 20.1: a history that cannot be written is one warning; the run goes on.
def test_an_unwritable_history_is_one_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    job(tmp_path)
    (tmp_path / "fixed").touch()
    for extra in ((), ("--headless",)):
        ran = run_cli(
            tmp_path, "job.py", "--exit-when-done", *extra, env=env_of(blocker / ".antflow")
        )
        assert ran.code == 0, ran.stderr
        assert "completed 5" in ran.stdout
        assert ran.stderr.count("cannot keep the run history in") == 1, ran.stderr
        assert "The run goes on without it." in ran.stderr
        assert "Traceback" not in ran.stderr


# Issue 20.4: on screen, a resumed run's header says what it resumed and how many items
# were done earlier; the summary after the screen counts them.
def test_the_screen_says_the_run_is_resumed(tmp_path: Path) -> None:
    from tests.tui.ptys import after_the_app, start

    home = tmp_path / "history"
    job(tmp_path)
    assert run_cli(tmp_path, "job.py", "--exit-when-done", env=env_of(home)).code == 1
    (tmp_path / "fixed").touch()
    app = start(["job.py", "--resume", "last", "--exit-when-done"], tmp_path, env=env_of(home))
    try:
        app.read_until("↻ resumed from ".encode())
        app.read_until(b" 4 done earlier")
        assert app.wait() == 0
    finally:
        app.close()
    assert "done earlier 4" in after_the_app(app)


# Issue 20.1: with a screen, a history that cannot be written is said once the screen is
# gone (and in the event log); the run goes on.
def test_an_unwritable_history_under_the_screen(tmp_path: Path) -> None:
    from tests.tui.ptys import after_the_app, start

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    job(tmp_path)
    (tmp_path / "fixed").touch()
    env = env_of(blocker / ".antflow")
    app = start(["job.py", "--exit-when-done"], tmp_path, env=env)
    try:
        assert app.wait() == 0
    finally:
        app.close()
    after = after_the_app(app)
    assert after.count("cannot keep the run history in") == 1, after
    assert "items 5  completed 5" in after
