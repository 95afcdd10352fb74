"""Import pages: upload a file, see every row error (row, column, expected, found) or a summary,
then commit it all at once. The upload is kept in the database, so any instance can commit it;
files over the background threshold are committed by an import job while the page shows its
progress, read from the database."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from app import jobs as runner
from app.auth.roles import role_required
from app.config import settings
from app.services import counts, exports, imports, jobs
from app.services.errors import DomainError
from app.web.common import export_response
from app.web.imports import bp
from app.web.imports.forms import CommitImportForm, UploadImportForm
from app.web.items.views import _list_filters as items_filters  # the items page's own filter parsing

EXPECTED = {
    "sku": _l("a SKU: required, no spaces, at most 64 characters"),
    "name": _l("a name: required, at most 200 characters"),
    "barcode": _l("a barcode of at most 64 characters"),
    "unit": _l("a unit of at most 16 characters"),
    "category": _l("a category of at most 100 characters"),
    "reorder_point": _l("a number of zero or more, with at most 3 decimal places"),
    "reorder_quantity": _l("a number of zero or more, with at most 3 decimal places"),
    "description": _l("a description"),
    "location": _l("the code of an existing, active location"),
    "quantity": _l("a number of zero or more, with at most 3 decimal places"),
    "tracking": _l("none, lot or serial"),
    "requires_expiry": _l("yes or no, and yes only for a lot-tracked item"),
    "expiry_warning_days": _l("a whole number of days from 0 to 3650, for a lot-tracked item"),
    "lot": _l("a lot code for a lot-tracked item (and only for one)"),
    "expiry": _l("a date YYYY-MM-DD, for a lot-tracked item"),
    "serial": _l("one serial number per unit for a serial-tracked item (and only for one)"),
    "duplicate_sku": _l("a SKU that no earlier row uses"),
    "duplicate_barcode": _l("a barcode that no other item uses"),
    "code_taken": _l("a code that is not another item's SKU or barcode, nor a location code"),
}


def _rejected(error: imports.ImportRejected) -> str:
    facts = error.extras
    reasons = {
        "too_large": lambda: _("The file is larger than %(mb)s MB.", mb=facts["limit"] // (1024 * 1024)),
        "too_many_rows": lambda: _("The file has more than %(n)s rows: split it.", n=facts["limit"]),
        "too_many_columns": lambda: _("The sheet is wider than %(n)s columns.", n=facts["limit"]),
        "too_large_unpacked": lambda: _(
            "The workbook unpacks to more than %(mb)s MB: save it again in Excel or split it.",
            mb=facts["limit"] // (1024 * 1024),
        ),
        "encoding": lambda: _("The file is neither UTF-8 nor GBK text: save it as CSV UTF-8 and try again."),
        "file_type": lambda: _("Upload a .csv or .xlsx file."),
        "not_xlsx": lambda: _("The file is not a readable Excel workbook."),
        "empty": lambda: _("The file has no rows to import."),
        "missing_columns": lambda: _(
            "The file lacks the column(s) %(columns)s.", columns=", ".join(facts.get("columns", []))
        ),
        "duplicate_columns": lambda: _(
            "The columns %(first)s and %(second)s give the same field: keep one of them.",
            first=facts["columns"][0],
            second=facts["columns"][1],
        ),
    }
    return reasons[error.reason]()


def _index(form: UploadImportForm, status: int = 200) -> Any:
    return render_template("imports/index.html", form=form, batches=imports.list_batches()), status


@bp.get("")
@role_required("manager")
def index() -> Any:
    return _index(UploadImportForm())


@bp.post("")
@role_required("manager")
def upload() -> Any:
    try:
        # Past MAX_CONTENT_LENGTH, Werkzeug refuses the body unread when it declares its length,
        # and stops reading it when it streams in without one (chunked).
        form = UploadImportForm()
        if not form.validate_on_submit():
            return _index(form, 422)
    except RequestEntityTooLarge:
        return _too_large()
    data, filename = form.file.data.read(imports.MAX_BYTES + 1), form.file.data.filename or "import.csv"
    if len(data) > imports.MAX_BYTES:
        return _too_large()
    try:
        checked = imports.check_file(data, filename)
    except imports.ImportRejected as error:
        form.file.errors = [_rejected(error)]
        return _index(form, 422)
    jobs.store_upload(data=data, filename=filename, user=current_user.username)
    commit = CommitImportForm(digest=checked.digest, filename=filename)
    context = dict(checked=checked, filename=filename, form=commit, expected=EXPECTED, shown=imports.MAX_ERRORS_SHOWN)
    return render_template("imports/preview.html", **context), 422 if checked.errors else 200


def _too_large() -> Any:
    form = UploadImportForm(formdata=None)
    form.file.errors = [_rejected(imports.ImportRejected("too_large", limit=imports.MAX_BYTES))]
    return _index(form, 413)


@bp.post("/commit")
@role_required("manager")
def commit() -> Any:
    form = CommitImportForm()
    if not form.validate_on_submit():
        abort(400)
    digest, filename = form.digest.data, form.filename.data
    data = jobs.read_upload(digest)
    if data is None:
        flash(_("The uploaded file is no longer kept: upload it again."), "error")
        return redirect(url_for(".index"), 303)
    rows = data.count(b"\n")
    if rows > settings().INVENTORY_IMPORT_BACKGROUND_ROWS or (
        filename.lower().endswith(".xlsx") and len(data) > 2_000_000
    ):
        # Lines less the header: a first estimate for the page, until the job counts the rows.
        estimate = max(rows - 1, 0)
        job_id = jobs.enqueue_import(digest=digest, filename=filename, user=current_user.username, rows=estimate)
        _kick()
        return redirect(url_for(".job", job_id=job_id), 303)
    try:
        result = imports.commit_import(data=data, filename=filename, user=current_user.username)
    except DomainError as error:
        flash(_("Nothing was imported: the file no longer checks out (%(detail)s).", detail=error.message), "error")
        return redirect(url_for(".index"), 303)
    flash(_summary(result), "success")
    return redirect(url_for(".index"), 303)


def _summary(result: imports.ImportResult) -> str:
    if result.already_imported:
        return _("This file was imported before (batch #%(id)s): nothing changed.", id=result.batch_id)
    return _(
        "Imported: %(created)s new items, %(updated)s items updated, %(lines)s opening stock lines.",
        created=result.items_created,
        updated=result.items_updated,
        lines=result.stock_lines,
    )


def _kick() -> None:
    """On the embedded default this process is the job worker: make sure it is running."""
    if settings().INVENTORY_JOBS_INLINE:
        runner.start_inline(current_app._get_current_object())  # type: ignore[attr-defined]


@bp.get("/jobs/<int:job_id>")
@role_required("manager")
def job(job_id: int) -> Any:
    if jobs.get_job(job_id) is None:
        abort(404)
    return render_template("imports/job.html", job_id=job_id)


@bp.get("/jobs/<int:job_id>/progress")
@role_required("manager")
def progress(job_id: int) -> Any:
    """The job as the page shows it; `final` tells the page to stop asking."""
    found = jobs.get_job(job_id)
    if found is None:
        abort(404)
    if jobs.claimable(found):
        _kick()
    # A job this very process runs (the embedded default, where SQLite's one writer lock keeps its
    # lease and progress from the database while the import runs) is alive, and its progress is here.
    local = runner.local_progress(job_id)
    phase, done, total = local or (found.phase, found.rows_done, found.rows_total)
    stalled = local is None and jobs.stalled(found)
    return jsonify(
        state=found.state,
        phase=phase,
        done=done,
        total=total,
        attempts=found.attempts,
        error=found.error,
        stalled=stalled,
        final=found.state in ("done", "failed") or stalled,
        message=_job_message(found, phase, total, stalled=stalled),
    )


def _job_message(found: Any, phase: str | None, total: int, *, stalled: bool) -> str:
    if found.state == "done":
        result = jobs.result_of(found)
        return _summary(result) if result else ""
    if found.state == "failed":
        return _job_failure(found)
    if stalled:
        return _(
            "No job worker has taken up this import: ask an administrator to check the job worker, "
            "then reload this page."
        )
    if found.state == "queued":
        return _("Waiting for a job worker…")
    if phase == "writing":
        return ngettext("%(num)s row is valid; writing it…", "All %(num)s rows are valid; writing them…", total)
    return _("Checking the rows…")


def _job_failure(found: Any) -> str:
    if found.error == jobs.WORKER_DIED:
        return ngettext(
            "The import stopped because the process running it ended; nothing was imported. "
            "Upload the file and commit it again.",
            "The import stopped %(num)s times because the process running it ended; nothing was imported. "
            "Upload the file and commit it again.",
            found.attempts,
        )
    if found.error == jobs.UPLOAD_MISSING:
        return _("The uploaded file is no longer kept; nothing was imported. Upload it again.")
    return _("The import failed and nothing was imported (%(error)s).", error=found.error)


# ---------------------------------------------------------------- exports


@bp.get("/export/items")
@role_required("viewer")
def export_items() -> Any:
    """Items as the items page filters them (same query arguments), as CSV or ?format=xlsx."""
    filters = {k: v for k, v in items_filters().items() if k not in ("sort", "descending")}
    header = [_("SKU"), _("Name"), _("Barcode"), _("Unit"), _("Category"), _("Reorder point")]
    header += [_("Reorder quantity"), _("On hand"), _("Archived"), _("Tracking")]
    hidden_skus = {sku for sku, _code in counts.hidden_places(current_user.role)}
    rows = (_item_row(r, hidden=r.sku in hidden_skus) for r in exports.iter_items(**filters))
    return export_response("items", header, rows)


def _item_row(r: Any, *, hidden: bool) -> list[Any]:
    return [
        r.sku,
        r.name,
        r.barcode or "",
        r.unit,
        r.category or "",
        r.reorder_point,
        r.reorder_quantity,
        "" if hidden else r.on_hand,
        _("Yes") if r.archived else "",
        r.tracking,
    ]


@bp.get("/export/stock")
@role_required("viewer")
def export_stock() -> Any:
    """Stock levels, optionally for one SKU, location or warehouse (codes), as CSV or XLSX."""
    filters = {k: request.args.get(k, "").strip() or None for k in ("sku", "location", "warehouse")}
    header = [_("SKU"), _("Location"), _("Warehouse"), _("Quantity"), _("Lot"), _("Expiry date")]
    blind = counts.hidden_places(current_user.role)
    rows = (
        [
            r.sku,
            r.location,
            r.warehouse,
            "" if (r.sku, r.location) in blind else r.quantity,
            r.lot or "",
            r.expiry.isoformat() if r.expiry else "",
        ]
        for r in exports.iter_stock_levels(**filters)
    )
    return export_response("stock-levels", header, rows)
