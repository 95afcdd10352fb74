"""Limits as deployed: behind nginx (one trusted proxy hop) every client keeps its own address, so
one client's failed sign-ins do not lock out another; and a per-token API limit is one limit for
the whole deployment (kept in the cluster's Redis), not one per app instance."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import SignInFailure
from app.services import users
from tests.cluster.conftest import READ_LIMIT_PER_MINUTE, client_from
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.mysql, pytest.mark.cluster]

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def sign_in(session, url: str, username: str, password: str) -> int:
    page = session.get(f"{url}/login", timeout=10)
    token = CSRF.search(page.text).group(1)
    form = {"csrf_token": token, "username": username, "password": password, "next": ""}
    return session.post(f"{url}/login", data=form, allow_redirects=False, timeout=10).status_code


def test_one_clients_failed_sign_ins_do_not_lock_out_another(cluster, cluster_app, seed):
    username = f"victim{seed(0).sku[-8:].lower()}"
    with cluster_app.app_context():
        users.create_user(username=username, password=DEFAULT_PASSWORD, role="viewer")
    attacker, victim = client_from("127.0.0.2"), client_from("127.0.0.3")

    statuses = [sign_in(attacker, cluster.url, username, "wrong-password") for _ in range(7)]

    assert statuses[0] == 401 and statuses[-1] == 429
    assert sign_in(victim, cluster.url, username, DEFAULT_PASSWORD) == 303
    # The apps key the throttle's username hash with the cluster's SECRET_KEY, not this process's.
    secret = json.loads((cluster.directory / "state.json").read_text())["secret_key"]
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha256).hexdigest()
    with cluster_app.app_context():
        clients = set(db.session.scalars(select(SignInFailure.client).where(SignInFailure.username_digest == digest)))
        db.session.remove()
    assert clients == {"127.0.0.2"}  # the address nginx saw, not nginx's own


def test_a_per_token_read_limit_holds_across_app_instances(cluster, seed):
    token = seed(0).token
    session = client_from()
    headers = {"Authorization": f"Bearer {token}"}

    statuses = [
        session.get(f"{cluster.url}/api/v1/warehouses", headers=headers, timeout=10).status_code
        for _ in range(READ_LIMIT_PER_MINUTE + 40)
    ]

    # Round-robin over two instances: a per-process limit would have let 2 x the limit through.
    assert statuses.count(200) == READ_LIMIT_PER_MINUTE
    assert statuses.count(429) == 40
