"""Issue 23: the keys page is generated from the app's key data (tools/keys_page.py), so
the docs' table and the bindings never disagree."""

from __future__ import annotations

from antflow_tui.keys import KEYS
from tools.keys_page import PAGE, key_words, page


def test_the_keys_page_is_the_one_the_key_data_makes() -> None:
    assert PAGE.read_text(encoding="utf-8") == page(), (
        "docs/app/keys.md is stale: the keys changed. Run `.venv/bin/python -m tools.keys_page`"
    )


def test_every_binding_with_an_id_is_on_the_page() -> None:
    text = page()
    missing = [
        key.id for keys in KEYS.values() for key in keys if key.id and f"`{key.id}`" not in text
    ]
    assert missing == []


def test_keys_read_as_typed() -> None:
    assert key_words("question_mark,f1") == "`?` `f1`"
    assert key_words("left_square_bracket") == "`[`"
    assert key_words("slash") == "`/`"
    assert key_words("ctrl+c") == "`ctrl+c`"
    assert key_words("escape") == "`esc`"
