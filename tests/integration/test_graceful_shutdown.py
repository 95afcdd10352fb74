"""Zero-downtime restarts under gunicorn with the shipped gunicorn.conf.py, under a steady load.

SIGHUP (what a config reload does) must not fail one request: new workers start before the old
ones finish what they hold. SIGTERM (what Kubernetes sends after the preStop sleep) must let the
requests in flight finish and leave the ledger whole: every stock write is all or nothing, and
`flask check-ledger` reconciles afterwards. A SQLite file keeps it self-contained.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.served import flask_cli, free_port, gunicorn

LOAD_SKU, LOAD_LOCATION = "DEMO-000002", "WH1-A-01-03"
PICK_SKU, PICK_LOCATION = "DEMO-000001", "WH1-A-01-02"  # 57 on hand after seed-demo
PICK_LINES = 500

pytestmark = pytest.mark.slow


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    env: dict[str, str]
    token: str
    database: Path
    log: Path

    @property
    def workers(self) -> int:
        return int(self.env["GUNICORN_WORKERS"])

    def children(self) -> set[int]:
        """The master's live worker processes, read from /proc (field 4 of stat is the parent pid)."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended while we looked
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                found.add(int(stat.parent.name))
        return found

    def request(
        self, method: str, path: str, body: dict[str, object] | None = None, connected: list[int] | None = None
    ) -> tuple[int, bytes]:
        """One request on its own connection, as a load balancer without keep-alive sends it. The
        connection's local port is appended to `connected` before the request is sent."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            if connected is not None:
                conn.connect()
                connected.append(conn.sock.getsockname()[1])
            headers = {"Connection": "close"}
            payload = None
            if body is not None:
                payload = json.dumps(body)
                headers |= {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


@dataclass
class Load:
    """Readers on /healthz and /readyz and writers receiving stock, each in a loop until stopped."""

    server: Server
    results: list[tuple[float, str, int | str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _loop(self, kind: str) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                if kind == "write":
                    body = {"sku": LOAD_SKU, "location": LOAD_LOCATION, "quantity": "1", "reference": "LOAD"}
                    status, _ = self.server.request("POST", "/api/v1/stock/receive", body)
                else:
                    status, _ = self.server.request("GET", "/readyz" if kind == "ready" else "/healthz")
                outcome: int | str = status
            except OSError as exc:
                outcome = type(exc).__name__
            with self.lock:
                self.results.append((started, kind, outcome))
            time.sleep(0.005)

    def start(self) -> Load:
        for kind in ("health", "ready", "ready", "write", "write"):
            thread = threading.Thread(target=self._loop, args=(kind,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def finish(self) -> list[tuple[float, str, int | str]]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=35)
        return self.results


# The shipped sync workers (four: each in-flight pick holds one, and a connection still waiting
# for a free worker when SIGTERM arrives is reset), and gthread workers (GUNICORN_THREADS > 1).
@pytest.fixture(
    params=[{"GUNICORN_WORKERS": "4"}, {"GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4"}], ids=["sync", "gthread"]
)
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    database = tmp_path / "inventory.db"
    metrics = tmp_path / "prometheus"
    metrics.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVENTORY_", "GUNICORN_", "DATABASE_", "FLASK_"))}
    env |= {
        "DATABASE_URL": f"sqlite:///{database}",
        "INVENTORY_ENV": "development",
        "SECRET_KEY": "graceful-shutdown-test-" + "k" * 32,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "INVENTORY_API_READ_LIMIT": "1000000/minute",
        "INVENTORY_API_WRITE_LIMIT": "1000000/minute",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_GRACEFUL_TIMEOUT": "20",
        **request.param,
    }
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "seed-demo", "--items", "3", "--demo-users")
    token = flask_cli(env, "create-token", "clerk", "--scope", "write", "--name", "load").splitlines()[0].strip()
    log = tmp_path / "gunicorn.log"
    with gunicorn(env, log) as process:
        srv = Server(process, port, env, token, database, log)
        _wait_until_serving(srv, workers=srv.workers)
        yield srv


def _wait_until_serving(srv: Server, *, workers: int, excluding: frozenset[int] = frozenset()) -> set[int]:
    # Generous: four workers importing the app on a loaded 2-core CI machine took 28 s once.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert srv.process.poll() is None, srv.log.read_text()
        pids = srv.children()
        if len(pids) == workers and not pids & excluding:
            try:
                if srv.request("GET", "/readyz")[0] == 200:
                    return pids
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not serve with {workers} fresh workers:\n{srv.log.read_text()}")


def _held_by_workers(srv: Server, client_ports: list[int]) -> set[int]:
    """The client ports whose connections a worker has accepted: the server's end of such a
    connection (in /proc/net/tcp: local port the server's, remote port the client's) is an open
    file of a worker. A connection still in the listen backlog is no process's file yet."""
    ends = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16), fields[9]
        if local == srv.port and remote in client_ports:
            ends[f"socket:[{inode}]"] = remote
    held = set()
    for pid in srv.children():
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            with contextlib.suppress(OSError):  # closed while we looked
                if (target := os.readlink(fd)) in ends:
                    held.add(ends[target])
    return held


def _wait_for(condition: Callable[[], object], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.002)


def _movements(database: Path, reference: str) -> int:
    with sqlite3.connect(database) as conn:
        return int(conn.execute("SELECT count(*) FROM movements WHERE reference = ?", (reference,)).fetchone()[0])


def test_sighup_reload_under_load_fails_no_request(server: Server) -> None:
    load = Load(server).start()
    time.sleep(1.5)
    old_workers = server.children()
    reload_at = time.monotonic()
    server.process.send_signal(signal.SIGHUP)
    new_workers = _wait_until_serving(server, workers=server.workers, excluding=frozenset(old_workers))
    time.sleep(1.5)
    results = load.finish()

    failures = [r for r in results if r[2] not in (200, 201)]
    assert not failures, f"{len(failures)} failed request(s) around the reload, first: {failures[:5]}"
    assert not new_workers & old_workers
    after = [r for r in results if r[0] > reload_at]
    assert len(results) > 100 and len({r[1] for r in after}) == 3, "the load kept running across the reload"
    writes = sum(1 for r in results if r[1] == "write")
    assert _movements(server.database, "LOAD") == writes
    assert "ledger OK" in flask_cli(server.env, "check-ledger")


def test_sigterm_finishes_in_flight_requests_and_leaves_the_ledger_whole(server: Server) -> None:
    picks: list[tuple[int | str, float, str]] = []
    pick_ports: list[int] = []

    def big_pick(reference: str) -> None:
        lines = [{"sku": PICK_SKU, "location": PICK_LOCATION, "quantity": "0.01"}] * PICK_LINES
        try:
            status: int | str = server.request(
                "POST", "/api/v1/stock/issue-lines", {"lines": lines, "reference": reference}, pick_ports
            )[0]
        except OSError as exc:  # still queued for a busy sync worker at SIGTERM: reset, never read
            status = type(exc).__name__
        picks.append((status, time.monotonic(), reference))

    load = Load(server).start()
    _wait_for(
        lambda: {kind for _, kind, status in load.results if status in (200, 201)} == {"health", "ready", "write"},
        "the load is served",
    )
    pickers = [threading.Thread(target=big_pick, args=(f"PICK-{n}",)) for n in range(3)]
    for thread in pickers:
        thread.start()
    # SIGTERM once a worker has taken a pick (it cannot have finished 500 lines by then).
    _wait_for(lambda: _held_by_workers(server, pick_ports), "a worker accepts a pick")
    term_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    for thread in pickers:
        thread.join(timeout=30)
    exit_code = server.process.wait(timeout=30)
    results = load.finish()

    assert exit_code == 0, server.log.read_text()
    # Every pick a worker took finished with 201, at least one was still running when SIGTERM
    # arrived, and each pick is written whole or (reset before a worker read it) not at all.
    answered = [(status, done) for status, done, _ in picks if isinstance(status, int)]
    assert answered and {status for status, _ in answered} == {201}, picks
    assert max(done for _, done in answered) > term_at
    for status, _, reference in picks:
        assert _movements(server.database, reference) == (PICK_LINES if status == 201 else 0)
    # Writers racing the stop either got 201 (written) or never reached a worker (not written).
    written, ok = _movements(server.database, "LOAD"), sum(1 for r in results if r[1] == "write" and r[2] == 201)
    unanswered = sum(1 for r in results if r[1] == "write" and not isinstance(r[2], int))
    assert ok <= written <= ok + unanswered
    assert not [r for r in results if isinstance(r[2], int) and r[2] not in (200, 201)], "no error responses"
    assert "ledger OK" in flask_cli(server.env, "check-ledger")
