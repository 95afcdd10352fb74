"""The app served as the image serves it: gunicorn with the shipped gunicorn.conf.py, prepared by
the flask CLI. For the tests that need a real server (graceful shutdown, OTLP export)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flask_cli(env: dict[str, str], *args: str) -> str:
    """Run `flask --app wsgi ARGS` with `env`; its output, or an assertion error with it."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextmanager
def gunicorn(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """gunicorn with the shipped config, as the image's CMD runs it, its output copied to `log`.
    Yielded once it says it listens (connections then wait in the listen queue until a worker
    takes them); killed at the end if it still runs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    listening = threading.Event()

    def copy() -> None:
        assert process.stdout is not None
        with log.open("w") as out:
            for line in process.stdout:
                out.write(line)
                out.flush()
                if "Listening at" in line:
                    listening.set()
        listening.set()  # it exited: the poll below fails the test with its output

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    try:
        assert listening.wait(60) and process.poll() is None, log.read_text()
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        reader.join(10)
