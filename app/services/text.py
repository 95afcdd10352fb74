"""Text fields: what a person, an API client or an imported file may put in a name, a code or a note.

C0 control characters (ESC, NUL, form feed …) are refused everywhere: no keyboard types them, they
only arrive pasted or from a file, and XLSX cannot hold them, so one stored `\\x1b` used to break
every export that met it. Fields that allow several lines keep tab and newline (CRLF, as browsers
send a textarea, becomes LF).
"""

from __future__ import annotations

import re

from app.services.errors import InvalidInput

#: Characters refused in SKUs and usernames, which name pages (/items/<sku>, /users/<name>) and
#: API paths: a "/" never routes (servers decode %2F before routing), and browsers and some
#: proxies turn a backslash into "/".
URL_UNSAFE = frozenset("/\\")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def single_line(value: str, field: str) -> str:
    """`value` if it holds no control character (tab and newline included). Raises InvalidInput."""
    if _CONTROL.search(value):
        raise InvalidInput(field, "must not contain control characters or line breaks")
    return value


def multi_line(value: str, field: str) -> str:
    """`value` with CRLF made LF, if it holds no control character but tab and newline. Raises InvalidInput."""
    value = value.replace("\r\n", "\n")
    if _CONTROL_BUT_LINES.search(value):
        raise InvalidInput(field, "must not contain control characters")
    return value
