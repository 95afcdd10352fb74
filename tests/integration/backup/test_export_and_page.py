"""`flask export-all DIR`, the admin backups page and its streamed zip export."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from app.extensions import db
from app.services import backup as backups
from tests.factories import DEFAULT_PASSWORD


def _read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def _seed(factory):
    item = factory.item(sku="EXP-1", name="=HYPERLINK(1) 螺丝")
    shelf = factory.location()
    factory.stock(item, shelf, 9, note="first")
    return item, shelf


def test_export_all_writes_every_table_as_csv_with_a_manifest(app, factory, tmp_path):
    _item, shelf = _seed(factory)
    result = app.test_cli_runner().invoke(args=["export-all", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"] == {
        "categories.csv": 0, "items.csv": 1, "locations.csv": 1, "stock_levels.csv": 1, "movements.csv": 1,
    }  # fmt: skip
    items = _read_csv((out / "items.csv").read_bytes())
    assert items[0][:3] == ["id", "sku", "name"] and items[1][1:3] == ["EXP-1", "'=HYPERLINK(1) 螺丝"]
    movements = _read_csv((out / "movements.csv").read_bytes())
    row = dict(zip(movements[0], movements[1], strict=True))
    assert (row["kind"], row["sku"], row["to_location"], row["quantity"], row["note"]) == (
        "receive", "EXP-1", shelf.code, "9.000", "first",
    )  # fmt: skip
    levels = _read_csv((out / "stock_levels.csv").read_bytes())
    assert levels[1][:3] == ["EXP-1", shelf.code, "9.000"]


def test_export_all_refuses_a_directory_that_is_not_empty(app, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = app.test_cli_runner().invoke(args=["export-all", str(tmp_path)])
    assert result.exit_code == 1 and "is not empty" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def _sign_in(client, user) -> None:
    response = client.post("/login", data={"username": user.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 303


def test_the_backups_page_lists_manifests_and_verifications_for_admins_only(make_app, factory, tmp_path):
    app = make_app(INVENTORY_BACKUP_TARGET=str(tmp_path))
    client = app.test_client()
    _seed(factory)
    with app.app_context():
        made = backups.create_backup(target=str(tmp_path), app_version="9.9.9")
        backups.verify_backup(backup=made.name, target=str(tmp_path))
        db.session.remove()
    _sign_in(client, factory.user(role="manager"))
    assert client.get("/backups").status_code == 403
    assert client.get("/backups/export.zip").status_code == 403
    client = app.test_client()
    _sign_in(client, factory.user(role="admin"))
    page = client.get("/backups")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert made.name in html and made.manifest["ledger_checksum"] in html and "9.9.9" in html
    assert html.count(">成功<") == 2 and "最近一次成功校验" in html  # Simplified Chinese by default


def test_the_zip_export_streams_the_same_files(make_app, factory):
    app = make_app()
    client = app.test_client()
    _seed(factory)
    _sign_in(client, factory.user(role="admin"))
    response = client.get("/backups/export.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.is_streamed
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert sorted(archive.namelist()) == sorted(
        ["categories.csv", "items.csv", "locations.csv", "stock_levels.csv", "movements.csv", "manifest.json"]
    )
    assert json.loads(archive.read("manifest.json"))["files"]["movements.csv"] == 1
    assert _read_csv(archive.read("items.csv"))[1][1] == "EXP-1"
