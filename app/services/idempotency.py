"""Idempotency keys: checking a key, fingerprinting the request it names, and whose key it is.

A key belongs to its caller: the same key from two callers is two requests (issue 14). Pages act
as their user ("user:<username>"); the API as its token ("token:<id>"), which callers pass.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.services.errors import InvalidInput

MAX_KEY_LENGTH = 128


def check_key(key: str | None) -> str | None:
    """The key without surrounding blanks; raises InvalidInput unless it has 1 to 128 characters."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput("idempotency_key", f"must be 1 to {MAX_KEY_LENGTH} characters")
    return key


def scope(user: str, caller: str | None = None) -> str:
    """Whose keys a request's key is compared with: the caller given (an API token), else the user."""
    return caller or f"user:{user}"


def fingerprint(operation: str, **fields: Any) -> str:
    """SHA-256 of the canonical request, so a reused key with a different request is a conflict."""
    canonical = json.dumps([operation, fields], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
