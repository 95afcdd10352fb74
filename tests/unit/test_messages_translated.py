"""Pages speak through gettext: in the web and auth layers, a flashed message, a form field's label,
a validator's or ValidationError's message and an abort's description are never a bare string
literal (an f-string included): each is a _() / _l() call, or a value built from one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
LAYERS = [APP / "web", APP / "auth", APP / "errors.py"]
_VALIDATORS = {"DataRequired", "InputRequired", "Length", "Regexp", "NumberRange", "EqualTo", "Email", "AnyOf"}


def _name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _shown(call: ast.Call) -> list[ast.expr]:
    """The arguments of `call` that a user reads."""
    name, keywords = _name(call), {k.arg: k.value for k in call.keywords}
    if name == "flash" or name.endswith("Field"):
        return call.args[:1] + [keywords[k] for k in ("label", "description") if k in keywords]
    if name in ("ValidationError", "abort"):
        return list(call.args) + [keywords[k] for k in ("description",) if k in keywords]
    if name in _VALIDATORS:
        return [keywords["message"]] if "message" in keywords else []
    return []


def _bare(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and any(c.isalpha() for c in node.value)


def bare_literals(source: str) -> list[tuple[int, str]]:
    return sorted(
        (call.lineno, ast.unparse(arg))
        for call in ast.walk(ast.parse(source))
        if isinstance(call, ast.Call)
        for arg in _shown(call)
        if _bare(arg)
    )


def test_the_scan_finds_bare_literals_and_passes_translated_ones() -> None:
    source = (
        'flash("Saved")\nflash(_("Saved"))\n'
        'name = StringField(_l("Name"), validators=[Length(max=5, message="Long")])\n'
        'raise ValidationError(f"bad {x}")\nabort(404, _("No such page"))\ncount = IntegerField("Count")\n'
    )
    assert bare_literals(source) == [(1, "'Saved'"), (3, "'Long'"), (4, "f'bad {x}'"), (6, "'Count'")]


def _modules() -> list[Path]:
    return sorted(p for layer in LAYERS for p in ([layer] if layer.is_file() else layer.rglob("*.py")))


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(APP)))
def test_pages_show_no_untranslated_message(module: Path) -> None:
    assert bare_literals(module.read_text(encoding="utf-8")) == []
