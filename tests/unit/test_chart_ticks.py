"""Chart axes: ticks from 0 in round steps up to at least the highest value, never finer than a
stored quantity (0.001) nor, for counts, than 1."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.web.charts import nice_ticks


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        (40, ["0", "10", "20", "30", "40"]),
        (12, ["0", "5", "10", "15"]),
        (Decimal("2.5"), ["0", "0.5", "1", "1.5", "2", "2.5"]),
        (693_934, ["0", "200000", "400000", "600000", "800000"]),
        (Decimal("0.001"), ["0", "0.001"]),
        (0, ["0", "1"]),
    ],
)
def test_ticks_are_round_steps_reaching_the_top(top: Decimal | int, expected: list[str]) -> None:
    assert nice_ticks(top) == [Decimal(value) for value in expected]


def test_count_ticks_step_by_whole_numbers() -> None:
    assert nice_ticks(Decimal("2.5"), whole=True) == [Decimal(n) for n in (0, 1, 2, 3)]
    assert nice_ticks(1, whole=True) == [Decimal(0), Decimal(1)]
