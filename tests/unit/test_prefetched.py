"""transaction.prefetched: values made one ahead in a helper thread, in order, errors raised to
the caller, and nothing made past what the caller asked for plus the step under way."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from app.services.transaction import prefetched


def test_values_come_in_order_and_are_made_in_another_thread() -> None:
    makers: list[str] = []

    def produce() -> Iterator[int]:
        for n in range(5):
            makers.append(threading.current_thread().name)
            yield n

    assert list(prefetched(produce())) == [0, 1, 2, 3, 4]
    assert makers and all(name.startswith("inventory-prefetch") for name in makers)


def test_the_next_value_is_made_while_the_caller_works_on_this_one() -> None:
    second_started = threading.Event()

    def produce() -> Iterator[int]:
        yield 1
        second_started.set()
        yield 2

    values = prefetched(produce())
    assert next(values) == 1
    # The caller has not asked for the second value yet; the helper makes it anyway.
    assert second_started.wait(10)
    assert list(values) == [2]


def test_an_error_while_making_a_value_is_raised_to_the_caller() -> None:
    def produce() -> Iterator[int]:
        yield 1
        raise ValueError("row 2 is broken")

    values = prefetched(produce())
    assert next(values) == 1
    with pytest.raises(ValueError, match="row 2 is broken"):
        next(values)


def test_a_caller_that_stops_early_stops_the_making() -> None:
    made: list[int] = []

    def produce() -> Iterator[int]:
        for n in range(100):
            made.append(n)
            yield n

    values = prefetched(produce())
    assert next(values) == 0
    values.close()  # the caller failed (say, its INSERT did): the step under way ends, no more
    assert made == [0, 1]
