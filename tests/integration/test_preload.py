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


def test_loading_the_app_as_the_master_does_opens_no_connection_and_starts_no_thread(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVENTORY_", "DATABASE_", "OTEL_", "FLASK_"))}
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.db'}",
        "SECRET_KEY": "preload-test-" + "k" * 32,
        "INVENTORY_ENV": "production",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    threads, connections = map(int, done.stdout.split()[-2:])
    assert (threads, connections) == (1, 0)
