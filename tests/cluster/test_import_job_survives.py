"""An import as deployed: uploaded and previewed on one app instance, committed on another, run by
the job worker, which is killed in the middle of the commit. The job runs again once its lease
lapses and completes; at no point is anything half imported.

Cost on a 2-core machine: about 30-60 s (20,000 rows checked and written twice, one lease lapse).
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from app.services import users
from tests.cluster.conftest import JOB_LEASE_SECONDS, client_from, connect, wait_until
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.mysql, pytest.mark.cluster, pytest.mark.slow]

ROWS = 20_000
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
HIDDEN = re.compile(r'name="(digest|filename)"[^>]*value="([^"]+)"')


def _query(url: str, statement: str, *args: object) -> tuple[object, ...]:
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, args)
            return tuple(cursor.fetchone() or ())
    finally:
        connection.close()


def _job(url: str, job_id: int) -> tuple[str, int, int]:
    state, done, attempts = _query(url, "SELECT state, rows_done, attempts FROM import_jobs WHERE id = %s", job_id)
    return str(state), int(done), int(attempts)  # type: ignore[call-overload]


def _imported(url: str, prefix: str) -> int:
    (count,) = _query(url, "SELECT COUNT(*) FROM items WHERE sku LIKE %s", f"{prefix}-%")
    return int(count)  # type: ignore[call-overload]


def test_an_import_committed_on_another_instance_survives_its_worker_being_killed(cluster, cluster_app):
    cluster.up(writers="one")
    ports = json.loads((cluster.directory / "state.json").read_text())["ports"]
    first, second = (f"http://127.0.0.1:{ports[name]}" for name in ("app1", "app2"))
    tag = uuid.uuid4().hex[:8].upper()
    with cluster_app.app_context():
        users.create_user(username=f"boss{tag.lower()}", password=DEFAULT_PASSWORD, role="manager")
    session = client_from()
    page = session.get(f"{first}/login", timeout=10)
    form = {"csrf_token": CSRF.search(page.text).group(1), "username": f"boss{tag.lower()}"}
    assert session.post(f"{first}/login", data={**form, "password": DEFAULT_PASSWORD, "next": ""}, timeout=10).ok
    content = ("sku,name\n" + "".join(f"JOB{tag}-{n},集群导入 {n}\n" for n in range(ROWS))).encode()

    token = CSRF.search(session.get(f"{first}/imports", timeout=10).text).group(1)
    preview = session.post(
        f"{first}/imports", data={"csrf_token": token}, files={"file": ("big.csv", content)}, timeout=60
    )
    assert preview.status_code == 200, preview.text[:500]
    commit = dict(HIDDEN.findall(preview.text))
    commit["csrf_token"] = CSRF.search(preview.text).group(1)
    started = session.post(f"{second}/imports/commit", data=commit, allow_redirects=False, timeout=30)
    assert started.status_code == 303, started.text[:500]
    job_id = int(started.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    database = cluster.urls["DATABASE_URL"]

    # Inside the commit's transaction: rows counted, none written yet where anyone can see them.
    wait_until(lambda: _job(database, job_id)[1] > 0, 120, "the job worker reports progress")
    cluster.kill("jobs")
    state, _done, attempts = _job(database, job_id)
    assert (state, attempts) == ("running", 1)
    assert _imported(database, f"JOB{tag}") == 0

    cluster.start("jobs")
    wait_until(lambda: _job(database, job_id)[0] in ("done", "failed"), 240 + JOB_LEASE_SECONDS, "the job ends")

    progress = session.get(f"{first}/imports/jobs/{job_id}/progress", timeout=10).json()
    assert (progress["state"], progress["attempts"], progress["final"]) == ("done", 2, True), progress
    assert f"{ROWS} 个新物品" in progress["message"]
    assert _imported(database, f"JOB{tag}") == ROWS
    digest = commit["digest"]
    assert _query(database, "SELECT COUNT(*) FROM import_batches WHERE digest = %s", digest) == (1,)
