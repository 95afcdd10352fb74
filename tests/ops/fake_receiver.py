"""A fake WeCom robot / webhook receiver on loopback, for the notification and logging tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.ops.loopback import serve_posts


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeReceiver:
    """Records every POST; answers with `status` and `answer` (WeCom: errcode 0 means accepted)."""

    url: str = ""
    status: int = 200
    answer: dict[str, Any] = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    received: list[Received] = field(default_factory=list)

    def markdown(self) -> list[str]:
        return [r.json()["markdown"]["content"] for r in self.received if r.path.startswith("/cgi-bin/webhook/send")]


@contextmanager
def fake_receiver() -> Iterator[FakeReceiver]:
    state = FakeReceiver()

    def respond(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        state.received.append(Received(path, headers, body))
        return state.status, "application/json", json.dumps(state.answer).encode()

    with serve_posts(respond) as url:
        state.url = url
        yield state
