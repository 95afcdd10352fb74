"""The loop every long-running worker (`flask notify run`, `flask jobs run`) runs: rounds until
SIGTERM or SIGINT, a round that fails on the database logged and tried again, a pause after each
round that found nothing to do."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.observability.logging import log_to_stdout

log = logging.getLogger(__name__)


def run_rounds(name: str, one_round: Callable[[], bool], *, interval: float, **facts: Any) -> None:
    """Call `one_round` (True: it did work, go again at once) until a stop signal. A signal lands
    between rounds' statements, never inside a transaction's outcome: the round in hand finishes."""
    log_to_stdout()
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info(f"{name} worker stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info(f"{name} worker started", extra={"interval_s": interval, **facts})
    while not stop.is_set():
        busy = False
        try:
            busy = one_round()
        except SQLAlchemyError:
            # The database is away (restart, failover): keep the worker alive and try again.
            log.exception(f"{name} round failed")
            db.session.rollback()
        finally:
            db.session.remove()
        if not busy:
            stop.wait(interval)
    log.info(f"{name} worker stopped")
