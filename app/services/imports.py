"""Importing items and opening stock from CSV (UTF-8 with or without BOM, or GBK as Chinese Excel
saves it) and XLSX: read, check every row (row, column, what was expected, what was found), then
commit all or nothing.

The commit is one unit of work: new items (items.create_items), changed items (items.update_items)
and opening stock (stock.receive_lines, so the ledger reconciles) are written together with an
ImportBatch row keyed by the file's SHA-256, so committing the same file again changes nothing.
"""

from __future__ import annotations

import codecs
import csv
import gc
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

from charset_normalizer.md import mess_ratio
from sqlalchemy import Table, select

from app.extensions import db
from app.models import ImportBatch, Item, Location
from app.services import items, stock, transaction
from app.services.errors import DomainError, InvalidInput
from app.services.quantities import parse_quantity
from app.services.transaction import unit_of_work

#: Told ("checking", rows checked, rows) every 5,000 rows, then ("writing", rows, rows).
Progress = Callable[[str, int, int], None]
MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
# A workbook of 100,000 rows in our ten columns unpacks to 56 MB of XML (4 MB zipped); beyond
# 200 MB, or a member packed tighter than 100:1 (XML packs 10-20:1, a zip bomb 1,000:1), the file
# is refused before openpyxl reads a byte of it.
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_PACKING_RATIO = 100
MAX_MEMBERS = 1000
#: Columns read from a sheet: the import knows ten, people add a few of their own.
MAX_COLUMNS = 100
MAX_ERRORS_SHOWN = 200
# The encoding detector reads at most this much of a file's non-ASCII lines. Below a gap of
# CLEAR_MESS_GAP its mess ratio is noise: two short names score 0.0 read wrongly, 0.025 read right.
DETECTION_BYTES = 1024 * 1024
CLEAR_MESS_GAP = 0.1
ITEM_COLUMNS = ("sku", *items.ITEM_FIELDS)
_ITEMS = cast(Table, Item.__table__)
STOCK_COLUMNS = ("location", "quantity")
# Opening stock of a lot-tracked item names its lot (and expiry); of a serial-tracked item, its
# serial numbers (separated by spaces, commas or semicolons), one per unit.
TRACKING_COLUMNS = ("lot", "expiry", "serial")
# Headers as people write them, in English or Chinese, mapped to our column names.
ALIASES = {
    "sku": "sku", "编码": "sku", "物料编码": "sku", "货号": "sku",
    "name": "name", "名称": "name", "品名": "name",
    "barcode": "barcode", "条码": "barcode",
    "unit": "unit", "单位": "unit",
    "category": "category", "分类": "category", "类别": "category",
    "reorder_point": "reorder_point", "reorder point": "reorder_point", "补货点": "reorder_point",
    "reorder_quantity": "reorder_quantity", "reorder quantity": "reorder_quantity", "补货量": "reorder_quantity",
    "description": "description", "描述": "description", "说明": "description",
    "location": "location", "库位": "location",
    "quantity": "quantity", "数量": "quantity", "期初数量": "quantity",
    "tracking": "tracking", "跟踪": "tracking", "跟踪方式": "tracking",
    "requires_expiry": "requires_expiry", "requires expiry": "requires_expiry", "需要有效期": "requires_expiry",
    "expiry_warning_days": "expiry_warning_days", "expiry warning days": "expiry_warning_days",
    "临期预警天数": "expiry_warning_days",
    "lot": "lot", "批次": "lot", "批号": "lot",
    "expiry": "expiry", "有效期": "expiry", "到期日": "expiry", "有效期至": "expiry",
    "serial": "serial", "serials": "serial", "序列号": "serial",
}  # fmt: skip


class ImportRejected(DomainError):
    """The file as a whole cannot be read: too big, too many rows, bad encoding, missing columns."""

    status = 422
    code = "import_rejected"
    title = "Import file rejected"

    def __init__(self, reason: str, **facts: Any) -> None:
        super().__init__(f"import file rejected: {reason}", reason=reason, **facts)
        self.reason = reason


class ImportInvalid(DomainError):
    status = 422
    code = "import_invalid"
    title = "Import rows invalid"

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} rows are invalid", error_count=len(errors))
        self.errors = errors


@dataclass(frozen=True)
class RowError:
    """Row is the spreadsheet's row number (the header is row 1); `field` is our column name."""

    row: int
    column: str
    field: str
    found: str


@dataclass
class Checked:
    digest: str
    rows: int = 0
    new: list[items.ItemInput] = field(default_factory=list)
    changed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lines: list[stock.PickLine] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    already_imported: bool = False


# ---------------------------------------------------------------- reading the file


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_csv(data: bytes) -> str:
    """UTF-8 (a BOM is dropped) or GB18030 (a superset of GBK), judged on the whole file. Many GBK
    names are also valid UTF-8 (水桶 is CB AE CD B0, which UTF-8 reads as "ˮͰ"), so when both
    decodings succeed a detector picks the one whose text reads as language. Raises ImportRejected."""
    if data.startswith(codecs.BOM_UTF8):
        candidates = {"utf-8": data[len(codecs.BOM_UTF8) :]}
    else:
        candidates = {"utf-8": data, "gb18030": data}
    decoded: dict[str, str] = {}
    for encoding, raw in candidates.items():
        try:
            decoded[encoding] = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    if not decoded:
        raise ImportRejected("encoding")
    if len(decoded) == 1:
        return next(iter(decoded.values()))
    return decoded[_likelier_encoding(data)]


def _likelier_encoding(data: bytes) -> str:
    """ "utf-8" or "gb18030" for a file valid in both. Only the lines with non-ASCII bytes tell
    them apart, so all of them (up to DETECTION_BYTES) are judged, not samples of a file that may
    be ASCII but for one row. The detector's mess ratio (odd characters side by side) decides
    when it is clear; short names read cleanly both ways, and then the reading with more of the
    common Chinese characters wins (GBK read as UTF-8 gives Greek and IPA letters, UTF-8 read as
    GBK gives rare hanzi)."""
    telling = b"\n".join(line for line in data.splitlines() if not line.isascii())[:DETECTION_BYTES]
    texts = {encoding: telling.decode(encoding, errors="replace") for encoding in ("utf-8", "gb18030")}
    mess = {encoding: mess_ratio(text, 1.0) for encoding, text in texts.items()}
    if abs(mess["utf-8"] - mess["gb18030"]) >= CLEAR_MESS_GAP:
        return min(mess, key=mess.__getitem__)
    return "gb18030" if _common_hanzi(texts["gb18030"]) > _common_hanzi(texts["utf-8"]) else "utf-8"


def _common_hanzi(text: str) -> int:
    """How many characters of `text` are among the 3,755 most common hanzi (GB2312 level 1)."""
    count = 0
    for char in text:
        if char.isascii():
            continue
        try:
            encoded = char.encode("gb2312")
        except UnicodeEncodeError:
            continue
        count += 0xB0 <= encoded[0] <= 0xD7
    return count


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_rows(data: bytes, filename: str) -> Iterator[list[str]]:
    """The file's rows as lists of text, the header first. Raises ImportRejected."""
    if len(data) > MAX_BYTES:
        raise ImportRejected("too_large", limit=MAX_BYTES)
    if filename.lower().endswith(".xlsx"):
        return _xlsx_rows(data)
    if filename.lower().endswith((".csv", ".txt")):
        return (list(map(str.strip, row)) for row in csv.reader(io.StringIO(decode_csv(data), newline="")))
    raise ImportRejected("file_type")


def _check_archive(data: bytes) -> None:
    """Refuse a workbook whose members would unpack beyond the limits. zipfile never returns more
    than a member's declared size, so the declared sizes bound what parsing can cost."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ImportRejected("not_xlsx") from None
    unpacked = sum(member.file_size for member in members)
    packed_tight = any(m.file_size > MAX_PACKING_RATIO * max(m.compress_size, 1024) for m in members)
    if len(members) > MAX_MEMBERS or unpacked > MAX_UNPACKED_BYTES or packed_tight:
        raise ImportRejected("too_large_unpacked", limit=MAX_UNPACKED_BYTES)


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    _check_archive(data)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = book.worksheets[0]
    except Exception:
        raise ImportRejected("not_xlsx") from None
    # The declared dimension (e.g. A1:XFD1048576 in a 1.5 KB file) would make openpyxl pad every
    # row to its width and yield every row up to its height.
    if (sheet.max_row or 0) > MAX_ROWS + 1:
        raise ImportRejected("too_many_rows", limit=MAX_ROWS)
    if (sheet.max_column or 0) > MAX_COLUMNS:
        raise ImportRejected("too_many_columns", limit=MAX_COLUMNS)
    # Read as the file really is, not as it declares itself: a too-small dimension would cut rows.
    sheet.reset_dimensions()
    return _sheet_rows(sheet)


def _sheet_rows(sheet: Any) -> Iterator[list[str]]:
    """Every row up to MAX_COLUMNS wide; gaps count, so a row placed at 1,048,576 stops the read
    at row 100,001 instead of yielding a million empty rows."""
    try:
        for number, row in enumerate(sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS), start=1):
            if number > MAX_ROWS + 1:
                raise ImportRejected("too_many_rows", limit=MAX_ROWS)
            yield [_cell(v) for v in row]
    except ImportRejected:
        raise
    except Exception:
        raise ImportRejected("not_xlsx") from None


def _columns(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, title in enumerate(header):
        name = ALIASES.get(title.strip().lower().lstrip("\ufeff"))
        if name in found:
            # Two columns for one field ("sku" and "物料编码", or "sku" twice): which one the rows
            # mean cannot be told, and taking the first silently dropped the other one.
            raise ImportRejected("duplicate_columns", columns=[header[found[name]].strip(), title.strip()])
        if name:
            found[name] = index
    missing = [c for c in ("sku", "name") if c not in found]
    if missing:
        raise ImportRejected("missing_columns", columns=missing)
    if ("location" in found) != ("quantity" in found):
        raise ImportRejected("missing_columns", columns=[c for c in STOCK_COLUMNS if c not in found])
    return found


# ---------------------------------------------------------------- checking the rows


def check_file(data: bytes, filename: str, progress: Progress | None = None, *, max_rows: int = MAX_ROWS) -> Checked:
    """Read and check every row against the database; nothing is written. Raises ImportRejected."""
    checked = Checked(digest_of(data))
    checked.already_imported = (
        db.session.scalar(select(ImportBatch.id).where(ImportBatch.digest == checked.digest)) is not None
    )
    rows = read_rows(data, filename)
    header = next(rows, None)
    if header is None:
        raise ImportRejected("empty")
    columns = _columns(header)
    titles = {name: header[index] for name, index in columns.items()}
    parsed: list[tuple[int, dict[str, str]]] = []
    # read_rows strips every cell; a short row is padded so one C call picks our columns out.
    names, pick, width = list(columns), itemgetter(*columns.values()), max(columns.values()) + 1
    for number, row in enumerate(rows, start=2):
        if not any(row):
            continue
        if len(parsed) >= max_rows:
            raise ImportRejected("too_many_rows", limit=max_rows)
        parsed.append((number, dict(zip(names, pick(row if len(row) >= width else row + [""] * width), strict=True))))
    if not parsed:
        raise ImportRejected("empty")
    checked.rows = len(parsed)
    _check_rows(checked, parsed, titles, progress)
    return checked


@dataclass
class _Known:
    """What the rows are checked against: the file's existing items, who holds each barcode so
    far, the active locations, the codes scanners already read, and the SKUs rows above defined."""

    existing: dict[str, Any]
    barcodes: dict[str, str]
    locations: set[str]
    taken: dict[str, str]
    seen: set[str] = field(default_factory=set)


def _check_rows(
    checked: Checked,
    parsed: list[tuple[int, dict[str, str]]],
    titles: dict[str, str],
    progress: Progress | None,
) -> None:
    matched = _items_with_codes({v for _, values in parsed for v in (values["sku"], values.get("barcode", "")) if v})
    known = _Known(
        existing={item.sku: item for item in matched},
        barcodes={item.barcode: item.sku for item in matched if item.barcode},
        locations=set(db.session.scalars(select(Location.code).where(Location.active.is_(True)))),
        taken=_taken_codes(matched),
    )
    for n, (number, values) in enumerate(parsed, start=1):
        if progress and n % 5000 == 0:
            progress("checking", n, len(parsed))
        _check_one(checked, known, number, values, titles)


def _check_one(checked: Checked, known: _Known, number: int, values: dict[str, str], titles: dict[str, str]) -> None:
    """One row: its item (new or changed), its stock line, or its errors."""
    item, line, errors = _check_row(number, values, titles, known.locations)
    if item is None:
        checked.errors.extend(errors)
        return
    if line is not None and not errors:
        current_item = known.existing.get(item.sku)
        tracking = current_item.tracking if current_item and "tracking" not in titles else item.tracking
        errors = _check_tracked(number, line, tracking, titles, values)
    if item.sku in known.seen:
        if not errors and line is not None and (line.lot or line.serials):
            checked.lines.append(line)  # another lot (or serials) of the item a row above defines
            return
        errors = errors or [RowError(number, titles["sku"], "duplicate_sku", item.sku)]
    errors = _code_errors(number, item, titles, known, errors)
    if errors:
        checked.errors.extend(errors)
        return
    known.seen.add(item.sku)
    current = known.existing.get(item.sku)
    if current is None:
        checked.new.append(item)
    elif changes := _changes(current, item, values):
        checked.changed.append((item.sku, changes))
    if line is not None:
        checked.lines.append(line)


def _code_errors(
    number: int, item: items.ItemInput, titles: dict[str, str], known: _Known, errors: list[RowError]
) -> list[RowError]:
    """`errors`, or else a barcode another row holds, or a code a scanner already reads. Every row
    claims its barcode, even one refused for another reason, so the later duplicate is named too."""
    if item.barcode and known.barcodes.setdefault(item.barcode, item.sku) != item.sku:
        errors = errors or [RowError(number, titles["barcode"], "duplicate_barcode", item.barcode)]
    return errors or _clashes(number, item, titles, known.taken)


def _check_row(
    number: int, values: dict[str, str], titles: dict[str, str], locations: set[str]
) -> tuple[items.ItemInput | None, stock.PickLine | None, list[RowError]]:
    def error(name: str) -> RowError:
        return RowError(number, titles.get(name, name), name, values.get(name, ""))

    try:
        item = items.check_item(**{k: v for k, v in values.items() if k in ITEM_COLUMNS})
    except InvalidInput as exc:
        return None, None, [error(exc.field)]
    if not (values.get("location") or values.get("quantity")):
        return item, None, []
    found = [] if values.get("location") in locations else [error("location")]
    try:
        quantity = parse_quantity(values.get("quantity", ""), allow_zero=True)
    except InvalidInput:
        return item, None, [*found, error("quantity")]
    if found or quantity == 0:
        return item, None, found
    try:
        expiry = stock.parse_expiry(values.get("expiry") or None)
    except InvalidInput:
        return item, None, [error("expiry")]
    serials = tuple(values.get("serial", "").replace(",", " ").replace(";", " ").split())
    line = stock.PickLine(item.sku, values["location"], quantity, values.get("lot") or None, expiry, serials)
    return item, line, []


def _check_tracked(
    number: int, line: stock.PickLine, tracking: str, titles: dict[str, str], values: dict[str, str]
) -> list[RowError]:
    """A stock line as its item is tracked: a lot (only) for lot-tracked items, one serial per
    unit (only) for serial-tracked ones."""

    def error(name: str) -> list[RowError]:
        return [RowError(number, titles.get(name, name), name, values.get(name, ""))]

    if (tracking == "lot") != bool(line.lot) or (line.expiry and tracking != "lot"):
        return error("lot" if tracking == "lot" or line.lot else "expiry")
    if (tracking == "serial") != bool(line.serials) or len(line.serials) not in (0, line.quantity):
        return error("serial")
    return []


def _items_with_codes(codes: set[str]) -> list[Item]:
    """The items whose SKU or barcode equals one of `codes` (the file's SKUs and barcodes), in id
    order: one lookup gives the rows their existing items, the barcodes taken so far and the codes
    scanners already read. A join per column, each seeking its unique index (OR-ing the two makes
    MariaDB scan every item)."""
    found: dict[int, Item] = {}
    for column in (_ITEMS.c.sku, _ITEMS.c.barcode):
        for listed in transaction.listed(codes, like=column):
            matching = select(Item).join(listed, column == listed.c.value)
            found.update((item.id, item) for item in db.session.scalars(matching))
    return [found[item_id] for item_id in sorted(found)]


def _taken_codes(matched: list[Item]) -> dict[str, str]:
    """Codes a scanner could read, case folded, each with the SKU of the item it belongs to (""
    for a location): every location code, and the SKUs and barcodes of the `matched` items."""
    taken = {code.lower(): "" for code in db.session.scalars(select(Location.code))}
    for item in matched:
        taken.setdefault(item.sku.lower(), item.sku)
        if item.barcode:
            taken.setdefault(item.barcode.lower(), item.sku)
    return taken


def _clashes(number: int, item: items.ItemInput, titles: dict[str, str], taken: dict[str, str]) -> list[RowError]:
    """A row whose SKU or barcode is another item's SKU or barcode, or a location code (one
    namespace for scanners); the codes the row brings are then taken by it for later rows."""
    for name, value in (("sku", item.sku), ("barcode", item.barcode)):
        if value and taken.get(value.lower(), item.sku) != item.sku:
            return [RowError(number, titles[name], "code_taken", value)]
    for value in (item.sku, item.barcode):
        if value:
            taken.setdefault(value.lower(), item.sku)
    return []


def _changes(item: Item, checked: items.ItemInput, values: dict[str, str]) -> dict[str, Any]:
    """The item fields the file changes: only the columns it has, and not cells left empty. A cell
    is judged as written, not as checked: an empty reorder point checks as 0, and read that way
    it set an existing item's reorder point to 0."""
    changes: dict[str, Any] = {}
    for name in (column for column in items.ITEM_FIELDS if column != "category"):
        value = getattr(checked, name)
        if values.get(name) and value not in (None, "") and value != getattr(item, name):
            changes[name] = value
    return changes


# ---------------------------------------------------------------- committing


@dataclass(frozen=True)
class ImportResult:
    batch_id: int
    items_created: int
    items_updated: int
    stock_lines: int
    already_imported: bool


@unit_of_work
def commit_import(*, data: bytes, filename: str, user: str, progress: Progress | None = None) -> ImportResult:
    """Check the file again and write it all, or nothing. Raises ImportRejected, ImportInvalid;
    a file committed before returns that earlier result."""
    earlier = db.session.scalar(select(ImportBatch).where(ImportBatch.digest == digest_of(data)))
    if earlier is not None:
        return ImportResult(earlier.id, earlier.items_created, earlier.items_updated, earlier.stock_lines, True)
    with _collector_paused():
        checked = check_file(data, filename, progress)
        if checked.errors:
            raise ImportInvalid(checked.errors)
        if progress:
            progress("writing", checked.rows, checked.rows)
        return _write(checked, filename, user)


def _write(checked: Checked, filename: str, user: str) -> ImportResult:
    batch = ImportBatch(digest=checked.digest, filename=filename[:200], username=user)
    db.session.add(batch)
    db.session.flush()
    # These services join this unit of work: items, item changes and opening stock commit
    # together with the batch row, or not at all.
    opening = stock.opening_on_hand(checked.lines, {item.sku: item.tracking for item in checked.new})
    created = items.create_items(checked.new, on_hand=opening)
    items.update_items(checked.changed)
    lines = 0
    if checked.lines:
        lines = stock.receive_lines(
            lines=checked.lines,
            user=user,
            reference=f"IMPORT-{batch.id}",
            note=filename[:200],
            created=created,
            counted=opening,
        )
    batch.items_created, batch.items_updated, batch.stock_lines = len(created), len(checked.changed), lines
    return ImportResult(batch.id, len(created), len(checked.changed), lines, False)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the import builds its rows. Those objects pile up and
    live to the end, and every time they grow by a quarter the collector scans the whole heap
    (pypinyin's dictionaries alone are 290,000 objects): a 100,000-row commit ran six full scans
    that took 2.1 to 2.8 s and freed 20 to 55 objects; without them its CPU time fell from 9.8 s
    to 8.2 s (issue 13, on a busy machine). Reference counting still frees everything else; the
    collector is switched back on (if it was on) however the import ends."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def list_batches(*, limit: int = 20) -> list[ImportBatch]:
    """The latest committed imports, newest first."""
    return list(db.session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)))
