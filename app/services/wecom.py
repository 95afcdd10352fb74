"""WeCom (企业微信) group robots: markdown messages within the robot's limits.

A robot accepts at most 20 messages a minute and markdown of at most 4,096 bytes (UTF-8). The
robot URL carries its key (`...webhook/send?key=...`): it is a secret, never logged or shown.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable

from opentelemetry import propagate

MARKDOWN_LIMIT_BYTES = 4096
MESSAGES_PER_MINUTE = 20
TRUNCATION_MARK = "\n…(truncated)"
TIMEOUT_SECONDS = 5


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


def pack(blocks: Iterable[str], *, header: str = "", limit: int = MARKDOWN_LIMIT_BYTES) -> list[str]:
    """Join markdown blocks into as few messages as fit in `limit` bytes each (each with `header`).

    A single block too big for one message is truncated rather than split mid-line.
    """
    messages: list[str] = []
    current = header
    for block in blocks:
        candidate = f"{current}\n\n{block}" if current else block
        if len(candidate.encode("utf-8")) <= limit:
            current = candidate
            continue
        if current and current != header:
            messages.append(current)
        current = truncate_utf8(f"{header}\n\n{block}" if header else block, limit)
    if current and current != header:
        messages.append(current)
    return messages


class RateLimiter:
    """A sliding one-minute window: at most `per_minute` sends; thread-safe."""

    def __init__(self, per_minute: int = MESSAGES_PER_MINUTE, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= 60:
            self._sent.popleft()

    def try_acquire(self) -> bool:
        with self._lock:
            now = self.clock()
            self._expire(now)
            if len(self._sent) >= self.per_minute:
                return False
            self._sent.append(now)
            return True

    def wait_seconds(self) -> float:
        """How long until the next send is allowed (0 if now)."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            if len(self._sent) < self.per_minute:
                return 0.0
            return max(0.0, 60 - (now - self._sent[0]))


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
