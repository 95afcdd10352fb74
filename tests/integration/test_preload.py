"""gunicorn preloads the app in its master and forks the workers from it (gunicorn.conf.py): the
master must load it without opening a database connection or starting a thread, which the
workers would inherit half-alive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import threading
import wsgi
from app.extensions import db
with wsgi.app.app_context():
    pool = db.engine.pool
    print(threading.active_count(), pool.checkedin() + pool.checkedout())
"""


def _master_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a production master, without the test run's own settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVENTORY_", "DATABASE_", "OTEL_", "FLASK_"))}
    return env | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.db'}",
        "SECRET_KEY": "preload-test-" + "k" * 32,
        "INVENTORY_ENV": "production",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }


def test_loading_the_app_as_the_master_does_opens_no_connection_and_starts_no_thread(tmp_path: Path) -> None:
    env = _master_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    threads, connections = map(int, done.stdout.split()[-2:])
    assert (threads, connections) == (1, 0)


FREEZE_PROBE = """
import gc, sys
from types import SimpleNamespace
import wsgi
from app.observability.gunicorn_hooks import pre_fork
from pypinyin.phrases_dict import phrases_dict
preload = sys.argv[1] == "preload"
pre_fork(SimpleNamespace(cfg=SimpleNamespace(preload_app=preload)), None)
tracked = {id(o) for o in gc.get_objects()}
readings = next(iter(phrases_dict.values()))  # a list: the collector tracks it
print(gc.get_freeze_count(), id(readings) in tracked)
"""


def test_a_preloaded_master_freezes_what_it_loaded_before_forking_a_worker(tmp_path: Path) -> None:
    """Workers' full collections must not scan the master's objects (pypinyin's dictionaries
    alone made one take 110 ms): pre_fork moves them to the permanent generation."""
    env = _master_env(tmp_path)
    seen = {}
    for mode in ("preload", "no-preload"):
        done = subprocess.run(
            [sys.executable, "-c", FREEZE_PROBE, mode], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        frozen, dictionary_tracked = done.stdout.split()[-2:]
        seen[mode] = (int(frozen), dictionary_tracked)
    assert seen["preload"][0] > 100_000 and seen["preload"][1] == "False"
    assert seen["no-preload"] == (0, "True")
