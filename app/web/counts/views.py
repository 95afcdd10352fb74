"""Cycle count pages. Counters never see system quantities: the count page shows what to count;
only the manager's review shows the system quantity, the count and the variance."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from markupsafe import Markup

from app.auth.roles import role_required
from app.models.types import MAX_ROW_ID
from app.services import catalog, counts
from app.services.errors import DomainError
from app.web.charts import variance_bar
from app.web.common import confirm_page, domain_message, whole_number
from app.web.counts import bp
from app.web.counts.forms import CountActionForm, OpenCountForm


def _message(error: DomainError) -> str:
    if isinstance(error, counts.CountIncomplete):
        return _("Some lines are not counted yet: %(skus)s.", skus=", ".join(error.extras["skus"]))
    if isinstance(error, counts.CountClosed):
        return _("This count is closed.")
    if isinstance(error, counts.NothingToCount) and error.location_missing:
        return _("Choose a location, or items to count wherever they are held.")
    if isinstance(error, counts.NothingToCount):
        return _("There is nothing to count there.")
    if isinstance(error, counts.WhereFound):
        return _("Say at which location the scanned item was found.")
    return domain_message(error)


def _index(form: OpenCountForm, status: int = 200) -> Any:
    return render_template(
        "counts/index.html", form=form, counts=counts.list_counts(), location_codes=catalog.location_codes()
    ), status


@bp.get("")
@role_required("clerk")
def index() -> Any:
    return _index(OpenCountForm(formdata=None, location=request.args.get("location", "").strip()[:64]))


@bp.post("")
@role_required("manager")
def create() -> Any:
    form = OpenCountForm()
    if not form.validate_on_submit():
        return _index(form, 422)
    try:
        count = counts.open_count(**form.to_input(), user=current_user.username)  # type: ignore[arg-type]
    except DomainError as error:
        form.form_errors.append(_message(error))
        return _index(form, error.status)
    flash(_("Count #%(id)s opened.", id=count.id), "success")
    return redirect(url_for(".show", count_id=count.id), 303)


@bp.get("/<int:count_id>")
@role_required("clerk")
def show(count_id: int) -> Any:
    view = counts.get_count(count_id)
    done = sum(1 for line in view.lines if not line.awaiting)
    return render_template("counts/show.html", view=view, form=CountActionForm(), entered=_entered(view), done=done)


def _entered(view: counts.CountView) -> dict[int, str]:
    """What the counter entered on each line, as typed back into its box: the second count once
    one is asked for (empty until entered), else the first; for a serial-tracked item, the
    serials found, one a line."""
    shown = {}
    for line in view.lines:
        value = line.second_count if line.recount_requested else line.first_count
        if value is None:
            shown[line.id] = ""
        elif line.tracking == "serial":
            shown[line.id] = "\n".join(line.serials)
        else:
            shown[line.id] = f"{value.normalize():f}"
    return shown


def _boxes(prefix: str) -> Iterator[tuple[int, str]]:
    """The form's `<prefix><line id>` fields: (line id, value stripped)."""
    for key, value in request.form.items():
        if key.startswith(prefix) and (line_id := whole_number(key[len(prefix) :], maximum=MAX_ROW_ID)) is not None:
            yield line_id, value.strip()


@bp.post("/<int:count_id>/entries")
@role_required("clerk")
def enter(count_id: int) -> Any:
    # The sheet shows what was entered; a box sent back as it was shown is not a new count.
    shown = _entered(counts.get_count(count_id))
    lines = {line_id: value for line_id, value in _boxes("qty:") if value and value != shown.get(line_id)}
    # Serials found, one a line; "none found" ticked says the line was counted and held none.
    serials: dict[int, str] = {line_id: "" for line_id, value in _boxes("none:") if value}
    serials |= {
        line_id: value
        for line_id, value in _boxes("serials:")
        if value and value.replace("\r\n", "\n") != shown.get(line_id)
    }
    found = {}
    if code := request.form.get("code", "").strip():
        found[code] = request.form.get("quantity", "").strip() or "1"
    where = request.form.get("location", "").strip() or None
    return _act(
        count_id,
        ".show",
        lambda: counts.record_counts(
            count_id=count_id, user=_user(), lines=lines, found=found, location=where, serials=serials
        ),
    )


@bp.get("/<int:count_id>/review")
@role_required("manager")
def review(count_id: int) -> Any:
    view = counts.get_count(count_id)
    only_variances = request.args.get("show") == "variances"
    varied = [line for line in view.lines if line.variance]

    # Variances above the count's threshold first, the largest on top, then every other line
    # in sheet order (location, SKU): what needs a decision is read before what does not.
    def large(line: counts.LineView) -> bool:
        return line.variance is not None and abs(line.variance) > view.count.threshold

    def order(line: counts.LineView) -> Decimal:
        return -abs(line.variance) if line.variance is not None and large(line) else Decimal(0)

    shown = sorted(varied if only_variances else view.lines, key=order)
    return render_template(
        "counts/review.html",
        view=view,
        form=CountActionForm(),
        lines=shown,
        bars=_variance_bars(shown, view.count.threshold),
        large={line.id for line in view.lines if large(line)},
        varied=len(varied),
        only_variances=only_variances,
        serials=counts.serial_differences(view) if view.count.status == "open" else {},
    )


def _variance_bars(lines: list[counts.LineView], threshold: Decimal) -> dict[int, Markup]:
    """A bar per counted line, on one scale for the page wide enough that the threshold marks
    sit inside it."""
    counted = {line.id: (v, line.unit) for line in lines if (v := line.variance) is not None}
    scale = max([abs(v) for v, _unit in counted.values()] + [threshold * Decimal("1.5")]) or Decimal(1)
    return {line_id: variance_bar(v, threshold, scale, unit) for line_id, (v, unit) in counted.items()}


@bp.post("/<int:count_id>/recount")
@role_required("manager")
def recount(count_id: int) -> Any:
    return _act(count_id, ".review", lambda: counts.request_recount(count_id=count_id, user=_user()))


@bp.post("/<int:count_id>/approve")
@role_required("manager")
def approve(count_id: int) -> Any:
    return _act(count_id, ".review", lambda: counts.approve_count(count_id=count_id, user=_user()))


@bp.get("/<int:count_id>/cancel")
@role_required("manager")
def confirm_cancel(count_id: int) -> Any:
    counts.get_count(count_id)
    return confirm_page(
        heading=_("Cancel count #%(id)s?", id=count_id),
        message=_("What was counted is discarded and no stocktake is posted. A cancelled count cannot be reopened."),
        action=url_for(".cancel", count_id=count_id),
        button=_("Cancel count"),
        cancel_url=url_for(".review", count_id=count_id),
    )


@bp.post("/<int:count_id>/cancel")
@role_required("manager")
def cancel(count_id: int) -> Any:
    return _act(count_id, ".review", lambda: counts.cancel_count(count_id=count_id, user=_user()))


def _user() -> str:
    return str(current_user.username)


def _act(count_id: int, back: str, action: Any) -> Any:
    """Run one count service call; say what happened and go back to the page it came from."""
    if not CountActionForm().validate_on_submit():
        abort(400)
    try:
        result = action()
    except counts.UnknownCount:
        abort(404)  # no page to go back to
    except DomainError as error:
        flash(_message(error), "error")
        return redirect(url_for(back, count_id=count_id), 303)
    messages = {
        "counts.enter": lambda: (
            ngettext("%(num)s count saved.", "%(num)s counts saved.", result) if result else _("Nothing new to save.")
        ),
        "counts.recount": lambda: ngettext(
            "%(num)s line sent for a second count.", "%(num)s lines sent for a second count.", result
        ),
        "counts.approve": lambda: ngettext(
            "Count approved: %(num)s stocktake line posted.",
            "Count approved: %(num)s stocktake lines posted.",
            len(result),
        ),
        "counts.cancel": lambda: _("Count cancelled."),
    }
    flash(messages[request.endpoint or ""](), "success")
    return redirect(url_for(back, count_id=count_id), 303)
