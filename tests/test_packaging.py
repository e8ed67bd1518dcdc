"""The project installs as one unit and keeps the engine free of the UI."""

from __future__ import annotations

import json
import subprocess
import sys

import antflow
import antflow_tui


def test_both_packages_import_and_share_a_version() -> None:
    assert antflow.__version__
    assert antflow_tui.__version__ == antflow.__version__


def test_cli_help_prints_usage() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "antflow_tui", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: ")
    assert "antflow" in done.stdout


def test_console_script_is_installed() -> None:
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("antflow-tui") == "antflow_tui.cli:main"


def test_engine_imports_nothing_from_the_ui() -> None:
    probe = "import json, sys\nimport antflow\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(done.stdout))
    for ui_module in ("textual", "click", "antflow_tui", "rich"):
        assert ui_module not in loaded, f"import antflow pulled in {ui_module}"


def test_engine_imports_no_cluster_library() -> None:
    probe = "import json, sys\nimport antflow.offload\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = {name.split(".")[0] for name in json.loads(done.stdout)}
    for backend in ("dask", "distributed", "ray"):
        assert backend not in loaded, f"import antflow.offload pulled in {backend}"
