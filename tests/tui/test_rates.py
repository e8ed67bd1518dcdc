"""Unit tests of antflow_tui.rates.RateMeter, on sample times passed in."""

from __future__ import annotations

from itertools import pairwise

import pytest

from antflow_tui.rates import SMOOTHING_SECONDS, RateMeter


def test_no_rate_before_two_samples() -> None:
    meter = RateMeter()
    assert meter.rate is None
    assert meter.update(0, now=100.0) is None
    assert meter.rate is None


def test_second_sample_gives_the_instant_rate() -> None:
    meter = RateMeter()
    meter.update(0, now=100.0)
    assert meter.update(50, now=102.0) == pytest.approx(25.0)
    assert meter.rate == pytest.approx(25.0)


def test_later_samples_move_the_rate_by_elapsed_over_smoothing() -> None:
    meter = RateMeter(smoothing=4.0)
    meter.update(0, now=0.0)
    meter.update(10, now=1.0)  # 10/s
    # 30/s for one second, weight 1/4: 10 + (30 - 10) / 4 = 15
    assert meter.update(40, now=2.0) == pytest.approx(15.0)


def test_a_gap_longer_than_the_smoothing_takes_the_new_rate() -> None:
    meter = RateMeter(smoothing=2.0)
    meter.update(0, now=0.0)
    meter.update(100, now=1.0)  # 100/s
    assert meter.update(150, now=11.0) == pytest.approx(5.0)


def test_a_steady_rate_stays_put() -> None:
    meter = RateMeter()
    for second in range(20):
        meter.update(second * 7, now=float(second))
    assert meter.rate == pytest.approx(7.0)


def test_rate_decays_towards_zero_when_the_count_stops() -> None:
    meter = RateMeter(smoothing=5.0)
    meter.update(0, now=0.0)
    meter.update(100, now=1.0)
    rates = [meter.update(100, now=float(second)) for second in range(2, 12)]
    assert all(later < earlier for earlier, later in pairwise(rates))
    assert rates[-1] is not None
    assert rates[-1] < 100 * (1 - 1 / 5.0) ** 9 + 1e-9


def test_a_sample_at_the_same_or_an_earlier_time_is_ignored() -> None:
    meter = RateMeter()
    meter.update(0, now=10.0)
    meter.update(20, now=12.0)  # 10/s
    assert meter.update(1_000, now=12.0) == pytest.approx(10.0)
    assert meter.update(2_000, now=11.0) == pytest.approx(10.0)
    # The ignored samples did not move the reference point.
    assert meter.update(40, now=14.0) == pytest.approx(10.0)


def test_a_falling_count_counts_as_no_progress() -> None:
    meter = RateMeter(smoothing=1.0)
    meter.update(100, now=0.0)
    assert meter.update(50, now=1.0) == 0.0


def test_default_smoothing() -> None:
    assert RateMeter().smoothing == SMOOTHING_SECONDS
