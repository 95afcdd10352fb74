"""Imports: encodings, preview with per-row errors, all-or-nothing commit, idempotent re-runs, limits."""

from __future__ import annotations

import dataclasses
import gc
import io
import itertools
import zipfile
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook
from sqlalchemy import func, select

from app import jobs as runner
from app.config import SETTINGS_KEY, settings
from app.extensions import db
from app.models import ImportBatch, Item, Lot, Movement, Serial, StockLevel
from app.services import imports, ledger, transaction
from tests.integration.floor.conftest import Stocked, text_of

GOOD = "sku,name,unit,category,location,quantity\nNEW-1,扳手,把,工具,WH1-A-01-02,5\nNEW-2,钳子,把,工具,,\n"


def _upload(client: FlaskClient, content: bytes, filename: str = "items.csv") -> Any:
    return client.post("/imports", data={"file": (io.BytesIO(content), filename)}, content_type="multipart/form-data")


def _commit(client: FlaskClient, content: bytes, filename: str = "items.csv") -> Any:
    return client.post(
        "/imports/commit", data={"digest": imports.digest_of(content), "filename": filename}, follow_redirects=True
    )


def _counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        return (
            int(db.session.scalar(select(func.count()).select_from(Item)) or 0),
            int(db.session.scalar(select(func.count()).select_from(Movement)) or 0),
        )


def _level(app: Flask, sku: str, location_id: int) -> Decimal | None:
    with app.app_context():
        return db.session.scalar(
            select(StockLevel.quantity)
            .join(Item, Item.id == StockLevel.item_id)
            .where(Item.sku == sku, StockLevel.location_id == location_id)
        )


def test_only_managers_import(client: FlaskClient, login_as: Callable[..., Any]) -> None:
    login_as("clerk")
    assert client.get("/imports").status_code == 403
    assert _upload(client, GOOD.encode()).status_code == 403


@pytest.mark.parametrize(
    ("encoding", "prefix"), [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gbk", b"")], ids=["utf8", "bom", "gbk"]
)
def test_preview_then_commit_imports_items_and_opening_stock(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, encoding: str, prefix: bytes
) -> None:
    login_as("manager")
    content = prefix + GOOD.encode(encoding)
    preview = _upload(client, content)
    assert preview.status_code == 200
    assert "行 2 新物品 2 更新的物品 0 期初库存行 1" in text_of(preview)  # each label above its number
    items_before, movements_before = _counts(app)
    assert items_before == 1  # the preview wrote nothing
    done = _commit(client, content)
    assert "已导入：2 个新物品，0 个物品已更新，1 条期初库存" in text_of(done)
    with app.app_context():
        item = db.session.scalar(select(Item).where(Item.sku == "NEW-1"))
        assert item is not None and (item.name, item.unit) == ("扳手", "把")
        assert ledger.find_ledger_mismatches() == []
    assert _level(app, "NEW-1", stocked.other.id) == Decimal(5)
    assert _counts(app) == (3, movements_before + 1)


def test_the_imports_page_lists_committed_files(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    assert "还没有导入过" in text_of(client.get("/imports"))
    _upload(client, GOOD.encode())
    _commit(client, GOOD.encode())
    page = text_of(client.get("/imports"))
    assert "IMPORT-" in page and "items.csv 2 0 1" in page


def test_the_same_file_twice_changes_nothing(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    content = GOOD.encode()
    _upload(client, content)
    _commit(client, content)
    after_first = _counts(app)
    preview = _upload(client, content)
    assert "此文件曾经导入过" in text_of(preview)
    again = _commit(client, content)
    assert "此文件已导入过" in text_of(again)
    assert _counts(app) == after_first
    assert _level(app, "NEW-1", stocked.other.id) == Decimal(5)


def test_existing_items_are_updated_by_sku(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    content = "sku,name,reorder_point\nSKU-SCREW,十字螺丝钉,8\n".encode()
    assert "行 1 新物品 0 更新的物品 1 期初库存行 0" in text_of(_upload(client, content))
    assert "0 个新物品，1 个物品已更新" in text_of(_commit(client, content))
    with app.app_context():
        item = db.session.scalar(select(Item).where(Item.sku == "SKU-SCREW"))
        assert item is not None and (item.name, item.reorder_point) == ("十字螺丝钉", Decimal(8))


BAD = (
    "sku,name,location,quantity\n"
    "OK-1,好的,WH1-A-01-01,1\n"
    ",缺编码,,\n"
    "OK-2,负数,WH1-A-01-01,-3\n"
    "OK-3,文字,WH1-A-01-01,很多\n"
    "OK-1,重复,,\n"
    "OK-4,没有库位,NOWHERE,2\n"
)


def test_bad_rows_are_listed_with_row_column_expected_found_and_nothing_is_written(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    before = _counts(app)
    preview = _upload(client, BAD.encode())
    assert preview.status_code == 422
    page = text_of(preview)
    assert "5 行有错误：不会导入任何内容" in page
    assert "3 sku 编码：必填，不含空格，最多 64 个字符 （空）" in page
    assert "4 quantity 零或更大的数字，最多 3 位小数 -3" in page
    assert "5 quantity 零或更大的数字，最多 3 位小数 很多" in page
    assert "6 sku 前面的行没有用过的编码 OK-1" in page
    assert "7 location 已存在且启用的库位编码 NOWHERE" in page
    assert "全部导入" not in page
    # Even a forged commit of the bad file writes nothing.
    forged = _commit(client, BAD.encode())
    assert "没有导入任何内容" in text_of(forged)
    assert _counts(app) == before
    assert gc.isenabled()  # the commit pauses the cycle collector, and restores it however it ends


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"name,unit\nx,y\n", "a.csv", "文件缺少列 sku"),
        (b"sku,name,location\nA,B,WH1\n", "a.csv", "文件缺少列 quantity"),
        (b"\xff\xfe\x00s\x00k\x00u\x81", "a.csv", "既不是 UTF-8 也不是 GBK"),
        (b"sku,name\n", "a.csv", "没有可导入的行"),
        (b"not a workbook", "a.xlsx", "不是可读取的 Excel"),
        (b"sku,name\n", "a.pdf", "请上传 .csv 或 .xlsx 文件"),
        # Which SKU the rows mean cannot be told: the first column was taken, the second dropped.
        ("sku,name,物料编码\nA-1,B,A-2\n".encode(), "a.csv", "列 sku 和 物料编码 是同一个字段"),
        (b"sku,name,Name\nA-1,B,C\n", "a.csv", "列 name 和 Name 是同一个字段"),
    ],
    ids=["no-sku", "half-stock", "encoding", "empty", "bad-xlsx", "type", "sku-twice", "name-twice"],
)
def test_files_that_cannot_be_read_are_refused_with_a_reason(
    client: FlaskClient, login_as: Callable[..., Any], content: bytes, filename: str, message: str
) -> None:
    login_as("manager")
    response = _upload(client, content, filename)
    assert response.status_code == 422
    assert message in text_of(response)


def test_row_limit(app: Flask) -> None:
    with app.app_context(), pytest.raises(imports.ImportRejected) as caught:
        imports.check_file(b"sku,name\nA,a\nB,b\nC,c\n", "x.csv", max_rows=2)
    assert caught.value.reason == "too_many_rows"


def test_size_limit(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "MAX_BYTES", 10)
    with app.app_context(), pytest.raises(imports.ImportRejected) as caught:
        imports.check_file(b"sku,name\nA,a\n", "x.csv")
    assert caught.value.reason == "too_large"


def test_xlsx_import(app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["编码", "名称", "条码", "库位", "数量"])
    sheet.append(["XL-1", "表格导入", 6901234567892, "WH1-A-01-01", 2.5])
    buffer = io.BytesIO()
    book.save(buffer)
    content = buffer.getvalue()
    login_as("manager")
    assert _upload(client, content, "items.xlsx").status_code == 200
    assert "1 个新物品" in text_of(_commit(client, content, "items.xlsx"))
    with app.app_context():
        assert db.session.scalar(select(Item.barcode).where(Item.sku == "XL-1")) == "6901234567892"
    assert _level(app, "XL-1", stocked.shelf.id) == Decimal("2.5")


def test_large_files_run_as_a_job_with_progress(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    lines = "".join(f"JOB-{n},批量 {n},WH1-A-01-02,1\n" for n in range(30))
    content = ("sku,name,location,quantity\n" + lines).encode()
    login_as("manager")
    _upload(client, content)
    configured = settings(app)
    app.extensions[SETTINGS_KEY] = dataclasses.replace(configured, INVENTORY_IMPORT_BACKGROUND_ROWS=10)
    try:
        started = client.post("/imports/commit", data={"digest": imports.digest_of(content), "filename": "big.csv"})
    finally:
        app.extensions[SETTINGS_KEY] = configured
    assert started.status_code == 303 and "/imports/jobs/" in started.headers["Location"]
    assert "导入进行中" in text_of(client.get(started.headers["Location"]))
    # The embedded default: this process runs the job in a thread of its own.
    assert runner.wait_inline(timeout=60)
    state = client.get(started.headers["Location"] + "/progress").get_json()
    assert (state["state"], state["final"], state["attempts"]) == ("done", True, 1), state
    assert "30 个新物品" in state["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 1
    assert _level(app, "JOB-29", stocked.other.id) == Decimal(1)


def test_a_commit_of_an_upload_no_longer_kept_asks_for_it_again(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    response = _commit(client, GOOD.encode())
    assert "上传的文件已不再保留" in text_of(response)


def test_an_upload_over_the_size_limit_is_refused_unread(
    client: FlaskClient, login_as: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "MAX_BYTES", 1000)
    login_as("manager")
    response = _upload(client, b"sku,name\n" + b"A,a\n" * 40_000)
    assert response.status_code == 413
    assert "文件超过" in text_of(response)


def test_commit_reports_its_progress(app: Flask, stocked: Stocked) -> None:
    content = ("sku,name\n" + "".join(f"PR-{n},进度 {n}\n" for n in range(5001))).encode()
    seen: list[tuple[str, int, int]] = []
    with app.app_context():
        imports.commit_import(data=content, filename="p.csv", user="t", progress=lambda *p: seen.append(p))
    assert seen == [("checking", 5000, 5001), ("writing", 5001, 5001)]


# ---------------------------------------------------------------- hostile workbooks

_WORKBOOK_PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="xl/workbook.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/></Relationships>'
    ),
    "xl/workbook.xml": (
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="worksheets/sheet1.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/></Relationships>'
    ),
}
_SHEET_START = '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
_HEADER_ROW = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>sku</t></is></c><c r="B1" t="inlineStr"><is><t>name</t></is></c></row>'
)


def _workbook(sheet_parts: Iterable[str]) -> bytes:
    """A minimal workbook whose only sheet's XML is `sheet_parts` joined, written as it streams."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, xml in _WORKBOOK_PARTS.items():
            archive.writestr(name, xml)
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            for part in sheet_parts:
                sheet.write(part.encode())
    return buffer.getvalue()


def test_a_workbook_declaring_the_whole_sheet_is_refused_before_reading(
    client: FlaskClient, login_as: Callable[..., Any]
) -> None:
    declared = _workbook(
        [_SHEET_START, '<dimension ref="A1:XFD1048576"/><sheetData>', _HEADER_ROW, "</sheetData></worksheet>"]
    )
    assert len(declared) < 2000
    with pytest.raises(imports.ImportRejected) as caught:
        # Before the fix the first row alone came back 16,384 cells wide, then a million more rows.
        for row in itertools.islice(imports.read_rows(declared, "big.xlsx"), 3):
            assert len(row) <= imports.MAX_COLUMNS
    assert caught.value.reason == "too_many_rows"
    login_as("manager")
    response = _upload(client, declared, "big.xlsx")
    assert response.status_code == 422
    assert f"文件超过 {imports.MAX_ROWS} 行" in text_of(response)


def test_rows_far_below_the_data_stop_the_read_at_the_row_limit() -> None:
    far = '<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    data = _workbook([_SHEET_START, "<sheetData>", _HEADER_ROW, far, "</sheetData></worksheet>"])
    rows = imports.read_rows(data, "far.xlsx")
    with pytest.raises(imports.ImportRejected) as caught:
        for _ in itertools.islice(rows, imports.MAX_ROWS + 5):
            pass
    assert caught.value.reason == "too_many_rows"


def test_a_zip_bomb_is_refused_before_it_is_unpacked(client: FlaskClient, login_as: Callable[..., Any]) -> None:
    filler = '<row><c t="inlineStr"><is><t>AAAAAAAA</t></is></c></row>' * 1000
    rounds = imports.MAX_UNPACKED_BYTES // len(filler) + 1
    bomb = _workbook(itertools.chain([_SHEET_START, "<sheetData>", _HEADER_ROW], itertools.repeat(filler, rounds)))
    assert len(bomb) < 2 * 1024 * 1024
    with pytest.raises(imports.ImportRejected) as caught:
        next(imports.read_rows(bomb, "bomb.xlsx"))
    assert caught.value.reason == "too_large_unpacked"
    login_as("manager")
    response = _upload(client, bomb, "bomb.xlsx")
    assert response.status_code == 422
    assert "解压后超过" in text_of(response)


def test_a_member_packed_like_a_bomb_is_refused_even_under_the_total_limit() -> None:
    filler = '<row><c t="inlineStr"><is><t>AAAAAAAA</t></is></c></row>' * 1000
    small_bomb = _workbook(itertools.chain([_SHEET_START, "<sheetData>"], itertools.repeat(filler, 400)))
    with pytest.raises(imports.ImportRejected) as caught:
        next(imports.read_rows(small_bomb, "bomb.xlsx"))
    assert caught.value.reason == "too_large_unpacked"


@pytest.mark.parametrize("encoding", ["gbk", "utf-8"])
def test_gbk_names_that_are_also_valid_utf8_are_read_as_gbk(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, encoding: str
) -> None:
    content = "sku,name\nGB-1,水桶\nGB-2,铜丝\n".encode(encoding)
    assert content.decode("utf-8")  # the GBK bytes of 水桶 and 铜丝 happen to be valid UTF-8 too
    login_as("manager")
    preview = text_of(_upload(client, content))
    assert "GB-1 水桶" in preview and "GB-2 铜丝" in preview
    _commit(client, content)
    with app.app_context():
        assert db.session.scalar(select(Item.name).where(Item.sku == "GB-1")) == "水桶"


def test_one_gbk_row_in_a_long_ascii_file_decides_the_encoding() -> None:
    text = "sku,name\n" + "".join(f"X-{n},plain\n" for n in range(20_000)) + "GB-1,铜丝\n"
    assert imports.decode_csv(text.encode("gbk")).endswith("GB-1,铜丝\n")


def _multipart(content: bytes, filename: str) -> tuple[bytes, str]:
    boundary = "secinput-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_an_upload_streamed_without_content_length_stops_at_the_limit(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any]
) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == imports.MAX_BYTES + 64 * 1024
    body, content_type = _multipart(b"sku,name\n" + b"A,a\n" * (imports.MAX_BYTES // 4 + 1), "huge.csv")
    stream = io.BytesIO(body)
    login_as("manager")
    # Chunked, as gunicorn hands it over: no CONTENT_LENGTH, the input marked as terminated.
    response = client.post(
        "/imports",
        input_stream=stream,
        content_type=content_type,
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert f"文件超过 {imports.MAX_BYTES // (1024 * 1024)} MB" in text_of(response)
    assert stream.tell() <= app.config["MAX_CONTENT_LENGTH"] + 64 * 1024  # the rest was never read


def test_a_streamed_upload_under_the_limit_is_read(client: FlaskClient, login_as: Callable[..., Any]) -> None:
    body, content_type = _multipart("sku,name\nST-1,扳手\n".encode(), "small.csv")
    login_as("manager")
    response = client.post(
        "/imports",
        input_stream=io.BytesIO(body),
        content_type=content_type,
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200
    assert "ST-1 扳手" in text_of(response)


LOTS = (
    "sku,name,tracking,requires_expiry,批次,有效期,序列号,location,quantity\n"
    "LOT-1,牛奶,lot,yes,B1,2030-01-31,,WH1-A-01-02,5\n"
    "LOT-1,牛奶,lot,yes,B2,2030-06-30,,WH1-A-01-02,3\n"
    "SN-1,手机,serial,,,,IMEI-1 IMEI-2,WH1-A-01-02,2\n"
)


def test_an_import_creates_tracked_items_with_their_lots_and_serials(app: Flask, stocked: Stocked) -> None:
    with app.app_context():
        result = imports.commit_import(data=LOTS.encode(), filename="lots.csv", user="t")
        assert (result.items_created, result.stock_lines) == (2, 3)
        milk = db.session.scalar(select(Item).where(Item.sku == "LOT-1"))
        assert (milk.tracking, milk.requires_expiry, milk.on_hand) == ("lot", True, Decimal(8))
        lots = db.session.execute(select(Lot.code, Lot.expiry).order_by(Lot.code)).all()
        assert [(code, str(expiry)) for code, expiry in lots] == [("B1", "2030-01-31"), ("B2", "2030-06-30")]
        assert sorted(db.session.scalars(select(Serial.serial))) == ["IMEI-1", "IMEI-2"]
        assert ledger.find_ledger_mismatches() == []


def test_import_rows_with_a_missing_lot_or_a_wrong_serial_count_are_listed(app: Flask, stocked: Stocked) -> None:
    bad = (
        "sku,name,tracking,lot,serial,location,quantity\n"
        "LOT-2,酸奶,lot,,,WH1-A-01-02,5\n"
        "SN-2,平板,serial,,A B,WH1-A-01-02,3\n"
        "PLAIN-2,扳手,,L9,,WH1-A-01-02,1\n"
    )
    with app.app_context():
        checked = imports.check_file(bad.encode(), "bad.csv")
    assert [(e.row, e.field) for e in checked.errors] == [(2, "lot"), (3, "serial"), (4, "lot")]


MIXED = (
    "sku,name,tracking,批次,序列号,location,quantity,reorder_point\n"
    "SKU-SCREW,螺丝钉,,,,WH1-A-01-02,4,\n"
    "MIX-1,垫片,,,,WH1-A-01-01,7,3\n"
    "MIX-2,螺母,,,,WH1-A-01-02,2,5\n"
    "MIX-3,胶带,lot,L1,,WH1-A-01-01,6,\n"
    "MIX-3,胶带,lot,L2,,WH1-A-01-02,1,\n"
    "MIX-4,扫码枪,serial,,S-1 S-2 S-3,WH1-A-01-01,3,\n"
    "MIX-5,扎带,,,,,,\n"
)


def test_new_items_start_with_the_stock_they_receive_and_existing_items_add_theirs(
    app: Flask, stocked: Stocked
) -> None:
    """New untracked items are inserted with their opening total (on MariaDB, not added after
    their receipt); tracked and existing items get theirs from their levels. Every total is the
    sum of its levels, counted once, and the low flag follows it."""
    with app.app_context():
        result = imports.commit_import(data=MIXED.encode(), filename="mixed.csv", user="t")
        assert (result.items_created, result.items_updated, result.stock_lines) == (5, 0, 6)
        rows = db.session.execute(select(Item.sku, Item.on_hand, Item.is_low).order_by(Item.sku)).all()
        assert [(sku, on_hand, bool(low)) for sku, on_hand, low in rows] == [
            ("MIX-1", Decimal(7), False),
            ("MIX-2", Decimal(2), True),
            ("MIX-3", Decimal(7), False),
            ("MIX-4", Decimal(3), False),
            ("MIX-5", Decimal(0), False),
            ("SKU-SCREW", Decimal(14), False),
        ]
        # Its reorder point cell was left empty: kept, not read as 0.
        assert db.session.scalar(select(Item.reorder_point).where(Item.sku == "SKU-SCREW")) == Decimal(5)
        assert ledger.find_total_mismatches() == []
        assert ledger.find_ledger_mismatches() == []


HOSTILE = [
    '引号 \' 和 "双引号"',
    "反斜杠 \\ 与 \\' 与 \\\\",
    "%s %(x)s 占位",
    "螺栓 📦 X'41'",
    "'); DROP TABLE items; --",
]


def test_bulk_written_text_arrives_exactly_as_given(
    app: Flask, stocked: Stocked, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import's rows travel as JSON documents (on MariaDB as bytes): quotes, backslashes,
    placeholders and four-byte characters arrive unchanged, across several documents, both in
    new items and in changed ones."""
    monkeypatch.setattr(transaction, "JSON_ROWS", 2)
    quoted = [name.replace('"', '""') for name in HOSTILE]
    created = "sku,name,location,quantity\n" + "".join(
        f'HOS-{n},"{name}",WH1-A-01-02,{n + 1}\n' for n, name in enumerate(quoted)
    )
    changed = "sku,name\n" + "".join(f'HOS-{n},"{name} 改"\n' for n, name in enumerate(quoted))
    with app.app_context():
        imports.commit_import(data=created.encode(), filename="hostile.csv", user="t")
        names = db.session.scalars(select(Item.name).where(Item.sku.like("HOS-%")).order_by(Item.sku)).all()
        assert names == HOSTILE
        assert imports.commit_import(data=changed.encode(), filename="hostile2.csv", user="t").items_updated == 5
        db.session.expire_all()
        names = db.session.scalars(select(Item.name).where(Item.sku.like("HOS-%")).order_by(Item.sku)).all()
        assert names == [f"{name} 改" for name in HOSTILE]
        assert ledger.find_total_mismatches() == []
