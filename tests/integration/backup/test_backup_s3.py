"""Backups to S3-compatible object storage, against moto's server mode on a loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from sqlalchemy import text

from app.extensions import db
from app.services import backup as backups

BUCKET = "inventory-backups"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    moto = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()  # noqa: S310 - loopback test server
                break
            except (urllib.error.URLError, ConnectionError):
                try:
                    server.wait(timeout=0.1)
                    pytest.fail("moto_server exited")
                except subprocess.TimeoutExpired:
                    continue
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def s3_app(make_app, s3_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield make_app(INVENTORY_BACKUP_TARGET=f"s3://{BUCKET}/nightly", INVENTORY_BACKUP_S3_ENDPOINT_URL=s3_endpoint)
    for entry in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=entry["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_backup_to_s3_is_listed_verified_and_restored(s3_app, factory, s3_endpoint):
    factory.stock(factory.item(sku="S3-1"), factory.location(), 12)
    runner = s3_app.test_cli_runner()
    created = runner.invoke(args=["backup", "create"])
    assert created.exit_code == 0, created.output
    url = created.output.strip().splitlines()[-1]
    assert url.startswith(f"s3://{BUCKET}/nightly/inventory-")
    keys = sorted(
        e["Key"] for e in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=BUCKET)["Contents"]
    )
    name = url.rsplit("/", 1)[1]
    assert keys == [f"nightly/{name}/data.sqlite.gz", f"nightly/{name}/manifest.json"]
    listed = runner.invoke(args=["backup", "list"])
    assert name in listed.output
    verified = runner.invoke(args=["backup", "verify", name])
    assert verified.exit_code == 0, verified.output
    factory.item(sku="S3-AFTER")
    restored = runner.invoke(args=["backup", "restore", url, "--yes"])
    assert restored.exit_code == 0, restored.output
    with s3_app.app_context():
        assert [b.name for b in backups.list_backups(target=f"s3://{BUCKET}/nightly", s3_endpoint_url=s3_endpoint)] == [
            name
        ]
        assert db.session.scalar(text("SELECT COUNT(*) FROM items WHERE sku = 'S3-AFTER'")) == 0
        db.session.remove()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_verify_names_a_backup_missing_from_s3(s3_app):
    result = s3_app.test_cli_runner().invoke(args=["backup", "verify", "inventory-20200101T000000Z"])
    assert result.exit_code == 1
    assert "no backup there" in result.output
