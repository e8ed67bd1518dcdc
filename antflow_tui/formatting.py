"""Numbers, durations and paths, formatted the way every panel shows them."""

from __future__ import annotations

import math


def format_count(value: int) -> str:
    """12345 -> '12,345'."""
    return f"{value:,}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 item', '2 items', '1,204 items' (`nouns`: an irregular plural)."""
    word = noun if count == 1 else (nouns or f"{noun}s")
    return f"{format_count(count)} {word}"


def format_rate(per_second: float | None) -> str:
    """Items per second, with as many digits as help."""
    if per_second is None:
        return "–"
    if per_second >= 100:
        return f"{per_second:,.0f}/s"
    if per_second >= 10:
        return f"{per_second:.1f}/s"
    return f"{per_second:.2f}/s"


def format_usd(amount: float) -> str:
    """US dollars with the digits that tell: $1,234, $12.40, $0.42, $0.0981, $0.0042.

    Below a dollar three significant digits are kept (a spend near a $0.10 budget must not
    read as the budget itself), at least two decimals.
    """
    if amount < 0:
        return "-" + format_usd(-amount)
    if amount == 0:
        return "$0"
    if amount >= 999.995:
        return f"${amount:,.0f}"
    if amount >= 0.995:
        return f"${amount:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(amount)))
    whole, _, fraction = f"{amount:.{decimals}f}".rstrip("0").partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def format_duration(seconds: float | None) -> str:
    """A short human duration: 850ms, 3.2s, 4m05s, 2h03m."""
    if seconds is None:
        return "–"
    if seconds < 0:
        seconds = 0.0
    # Thresholds sit where rounding would print "1000ms" or "60.0s".
    if seconds < 0.9995:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_clock(seconds: float) -> str:
    """Elapsed time as H:MM:SS."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def fit_count(value: int, width: int) -> str:
    """`value` in at most `width` characters: 12,345, else 12.3k / 123k / 1.2M / 12M..."""
    shown = format_count(value)
    if len(shown) <= width:
        return shown
    for divisor, unit in ((1_000, "k"), (1_000_000, "M"), (1_000_000_000, "G")):
        scaled = value / divisor
        if abs(scaled) >= 999.5 and unit != "G":
            continue  # a bigger unit reads better: 1.2M, not 1235k
        for decimals in (1, 0):
            shown = f"{scaled:.{decimals}f}{unit}"
            if len(shown) <= width:
                return shown
    return shown


def short_path(filename: str, cwd: str, stdlib: str) -> str:
    """A file path as a person wants to read it: relative to the working folder, or from
    ``site-packages/`` or ``<stdlib>/``, whichever applies."""
    root = cwd.rstrip("/")
    if root and filename.startswith(root + "/"):
        return filename[len(root) + 1 :]
    marker = "site-packages/"
    if marker in filename:
        return marker + filename.split(marker, 1)[1]
    if stdlib and filename.startswith(stdlib.rstrip("/") + "/"):
        return "<stdlib>/" + filename[len(stdlib.rstrip("/")) + 1 :]
    return filename
