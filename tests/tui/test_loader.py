"""Unit tests of antflow_tui.live.loader's module naming: a script's classes carry its name."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from antflow_tui.live.loader import load_script

if TYPE_CHECKING:
    from pathlib import Path


def test_a_script_is_loaded_under_its_own_name(tmp_path: Path) -> None:
    """Regression (issue 10): exceptions from the script showed the app's internal
    import name, not `scrape.ParseError`."""
    script = tmp_path / "scrape_t10.py"
    script.write_text("class ParseError(ValueError):\n    pass\n", encoding="utf-8")
    try:
        loaded = load_script(str(script))
        error = loaded.module.ParseError
        assert f"{error.__module__}.{error.__qualname__}" == "scrape_t10.ParseError"
        assert sys.modules["scrape_t10"] is loaded.module, "a sibling importing it shares it"
    finally:
        sys.modules.pop("scrape_t10", None)


def test_a_name_another_module_holds_is_not_shadowed(tmp_path: Path) -> None:
    script = tmp_path / "json.py"
    script.write_text("NAME = __name__\n", encoding="utf-8")
    import json

    loaded = load_script(str(script))
    assert loaded.module.NAME == "json"
    assert sys.modules["json"] is json
    (key,) = [key for key, module in sys.modules.items() if module is loaded.module]
    assert key.startswith("antflow_tui_script_")
    del sys.modules[key]


def test_a_script_called_main_does_not_run_its_main_block(tmp_path: Path) -> None:
    script = tmp_path / "__main__.py"
    script.write_text('RAN = False\nif __name__ == "__main__":\n    RAN = True\n', "utf-8")
    loaded = load_script(str(script))
    assert loaded.module.RAN is False


# Issue 18.8: a script's exception whose __str__ and __notes__ raise still has a text.
def test_a_script_exception_that_cannot_be_formatted_is_described() -> None:
    from antflow_tui.live.loader import script_traceback

    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError

        @property
        def __notes__(self) -> list[str]:
            raise RuntimeError

    assert script_traceback(Broken()) == (
        "Broken: <Broken: str() raised RuntimeError>\n"
        "(its traceback could not be formatted: RuntimeError)"
    )
