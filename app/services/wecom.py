"""WeCom (企业微信) group robots: markdown messages within the robot's limits.

A robot accepts at most 20 messages a minute and markdown of at most 4,096 bytes (UTF-8). The
robot URL carries its key (`...webhook/send?key=...`): it is a secret, never logged or shown.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from opentelemetry import propagate

MARKDOWN_LIMIT_BYTES = 4096
MESSAGES_PER_MINUTE = 20
TRUNCATION_MARK = "\n…(truncated)"
TIMEOUT_SECONDS = 5


_TAG = re.compile(r"<[^>]*>?")
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
# What makes inline markdown: emphasis, code, links and images, tags, strike-through, tables.
_METACHARACTERS = re.compile(r"([\\`*_\[\]<>~|!])")
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):/+")
_CODE_SPAN = re.compile(r"(`[^`\n]*`)")
_LINK = re.compile(r"(?<!\\)\]\(([^)]*)\)")


def inline(value: object, limit: int = 200) -> str:
    """A value (an item name, a location code: anything a user or an import typed) as literal
    text on one line of a message: tags dropped, line breaks and control characters made spaces,
    markdown metacharacters escaped, and "scheme://" broken so that no client turns it into a link."""
    text = _LINE_BREAKS.sub(" ", _TAG.sub("", str(value))).strip()[:limit]
    return _METACHARACTERS.sub(r"\\\1", _SCHEME.sub(r"\1:∕∕", text))


def code(value: object, limit: int = 64) -> str:
    """A value for a `code span`, where markdown is literal but a backtick would end the span."""
    return _SCHEME.sub(r"\1:∕∕", _LINE_BREAKS.sub(" ", str(value)).replace("`", "'").strip()[:limit])


def own_links(text: str, base_url: str) -> str:
    """Markdown links that lead anywhere but under `base_url` lose their target (code spans,
    where nothing is a link, are left as they are)."""
    root = base_url.rstrip("/") + "/"

    def checked(part: str) -> str:
        if part.startswith("`"):
            return part
        return _LINK.sub(lambda m: m.group(0) if m.group(1).startswith(root) else "]", part)

    return "".join(checked(part) for part in _CODE_SPAN.split(text))


class DeliveryFailed(Exception):
    """A robot or webhook did not accept a message; the text never contains the URL."""


def truncate_utf8(text: str, limit: int = MARKDOWN_LIMIT_BYTES, mark: str = TRUNCATION_MARK) -> str:
    """`text` cut to at most `limit` UTF-8 bytes on a character boundary, marked when cut."""
    if len(text.encode("utf-8")) <= limit:
        return text
    room = limit - len(mark.encode("utf-8"))
    cut = text.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    # Never end on half a markdown link: drop an opened "[text](url" that lost its ")".
    opened = cut.rfind("[")
    if opened != -1 and cut.find(")", opened) == -1:
        cut = cut[:opened]
    return cut.rstrip() + mark


class RateLimiter:
    """At most `per_minute` sends to one robot (`key`) in any sliding minute, counted by the
    `limits` library in `storage_uri` (the app's RATELIMIT_STORAGE_URI): shared by every process
    and pod when that is Redis, per process with memory://. Thread-safe."""

    def __init__(self, per_minute: int = MESSAGES_PER_MINUTE, *, key: str = "robot", storage_uri: str = "memory://"):
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._identifiers = ("wecom", key)

    def try_acquire(self) -> bool:
        return self._limiter.hit(self._item, *self._identifiers)

    def wait_seconds(self) -> float:
        """How long until the next send is allowed (0 if now)."""
        stats = self._limiter.get_window_stats(self._item, *self._identifiers)
        return 0.0 if stats.remaining > 0 else max(0.0, stats.reset_time - time.time())


def post_json(url: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """POST `body`; return the response body. Raises DeliveryFailed (without the URL) on failure."""
    if not url.startswith(("http://", "https://")):
        raise DeliveryFailed("the target URL must be http(s)")
    sent = {"Content-Type": "application/json", **(headers or {})}
    # W3C traceparent of the delivery, so the receiver can continue its trace.
    propagate.inject(sent)
    request = urllib.request.Request(url, data=body, method="POST", headers=sent)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return bytes(response.read(65536))
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"connection failed: {type(reason).__name__}") from None


def send_markdown(url: str, content: str) -> None:
    """Send one markdown message to a robot. Raises DeliveryFailed unless the robot says errcode 0."""
    body = json.dumps({"msgtype": "markdown", "markdown": {"content": truncate_utf8(content)}}, ensure_ascii=False)
    answer = post_json(url, body.encode("utf-8"))
    try:
        errcode = json.loads(answer or b"{}").get("errcode", 0)
    except (ValueError, AttributeError):
        raise DeliveryFailed("the robot's answer is not JSON") from None
    if errcode != 0:
        # 45009: over the rate limit; 93000: invalid key. errmsg may echo the key, so it is dropped.
        raise DeliveryFailed(f"robot errcode {errcode}")
