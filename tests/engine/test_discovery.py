"""The runtime folder and its discovery files: private, never through a link, never stale."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from typing import TYPE_CHECKING

import pytest

from antflow.runstream import discovery

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def shared_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No XDG_RUNTIME_DIR: the folder is <tmp>/antflow-UID, in a place others can write."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    shared = tmp_path / "tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    return shared


def served(folder: Path, pid: int, **changes: object) -> discovery.Served:
    fields: dict[str, object] = {
        "pid": pid,
        "address": f"unix:{folder}/{pid}.sock",
        "read_token": "r",
        "control_token": "c",
        "script": "job.py",
        "argv": ("job.py",),
        "started_at": 1_700_000_000.0,
        "path": folder / f"{pid}.json",
        "process_start": discovery.process_start(pid),
        **changes,
    }
    return discovery.Served(**fields)  # type: ignore[arg-type]


# Issue 18.1: another user's link at /tmp/antflow-UID must not be followed (the served
# job chmodded the folder it pointed at and wrote both tokens into it).
def test_a_link_in_place_of_the_folder_is_refused_and_its_target_left_alone(
    shared_tmp: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    os.chmod(victim, 0o755)
    (shared_tmp / f"antflow-{os.getuid()}").symlink_to(victim)
    with pytest.raises(discovery.DiscoveryError, match="symbolic link"):
        discovery.runtime_folder()
    with pytest.raises(discovery.DiscoveryError, match="symbolic link"):
        discovery.publish(served(shared_tmp / f"antflow-{os.getuid()}", os.getpid()))
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755
    assert list(victim.iterdir()) == []


# Issue 18.1: a folder of that name made by another user is not ours to use.
def test_a_folder_of_another_user_is_refused(
    shared_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The folder is this process's (the test's) own; "we" pretend to be uid 4242.
    (shared_tmp / "antflow-4242").mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: 4242)
    with pytest.raises(discovery.DiscoveryError, match="belongs to another user"):
        discovery.runtime_folder()


# Issue 18.1
def test_the_folder_is_made_private_and_so_is_one_left_open(shared_tmp: Path) -> None:
    folder = discovery.runtime_folder()
    assert folder == shared_tmp / f"antflow-{os.getuid()}"
    assert stat.S_IMODE(folder.lstat().st_mode) == 0o700
    os.chmod(folder, 0o777)
    assert discovery.runtime_folder() == folder
    assert stat.S_IMODE(folder.lstat().st_mode) == 0o700


# Issue 18.1: a link left at the discovery file's name is replaced, never written through.
def test_the_discovery_file_replaces_a_link_at_its_name_and_appears_whole(
    shared_tmp: Path, tmp_path: Path
) -> None:
    folder = discovery.runtime_folder()
    target = tmp_path / "elsewhere.txt"
    target.write_text("untouched")
    one = served(folder, os.getpid())
    one.path.symlink_to(target)
    discovery.publish(one)
    assert target.read_text() == "untouched"
    info = one.path.lstat()
    assert stat.S_ISREG(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert json.loads(one.path.read_text())["read_token"] == "r"
    # Written under a temporary name and renamed: nothing else is left in the folder.
    assert sorted(p.name for p in folder.iterdir()) == [one.path.name]
    assert discovery.find(os.getpid()) == one
    discovery.withdraw(one)
    assert discovery.running() == []


# Issue 18.1: a link among the discovery files is not read through either.
def test_a_link_among_the_discovery_files_is_not_followed(shared_tmp: Path, tmp_path: Path) -> None:
    folder = discovery.runtime_folder()
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_text(json.dumps({"pid": os.getpid(), "address": "unix:/x", "read_token": "t"}))
    (folder / f"{os.getpid()}.json").symlink_to(elsewhere)
    assert discovery.running() == []


# Issue 18.7: a discovery file whose PID now belongs to another process is stale:
# `attach` must not pick it (it did every time), and it is removed with its socket.
def test_a_file_whose_pid_was_taken_by_another_process_is_removed(shared_tmp: Path) -> None:
    folder = discovery.runtime_folder()
    now = discovery.process_start(os.getpid())
    assert isinstance(now, int)  # Linux: /proc/PID/stat
    stale = served(folder, os.getpid(), process_start=now - 1)
    discovery.publish(stale)
    (folder / f"{os.getpid()}.sock").write_text("")
    assert discovery.find(os.getpid()) is None
    assert sorted(folder.iterdir()) == []
    # The same process, as its file says: found.
    alive = served(folder, os.getpid())
    discovery.publish(alive)
    assert discovery.find(os.getpid()) == alive


def test_a_file_of_an_older_antflow_without_a_start_time_is_still_found(
    shared_tmp: Path,
) -> None:
    folder = discovery.runtime_folder()
    older = served(folder, os.getpid(), process_start=None)
    discovery.publish(older)
    data = json.loads(older.path.read_text())
    del data["process_start"]
    older.path.write_text(json.dumps(data))
    assert discovery.find(os.getpid()) == older


def test_damaged_and_hostile_discovery_files_are_skipped(shared_tmp: Path) -> None:
    folder = discovery.runtime_folder()
    (folder / "1.json").write_text("[" * 100_000)
    (folder / "2.json").write_text('{"pid": "x"}')
    (folder / "3.json").write_bytes(b"\xff\xfe")
    (folder / "4.json").mkdir()
    assert discovery.running() == []
