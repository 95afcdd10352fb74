"""The Alertmanager -> WeCom relay: its own small WSGI app.

WeCom group robots do not understand Alertmanager's webhook JSON, so Alertmanager posts to this
relay (`POST /alertmanager`), which turns each notification into a markdown message, queues it, and
sends the queue to the robot no faster than 20 messages a minute, merging queued messages into one
when they fit in 4,096 bytes. Run it as `flask wecom-relay` or `gunicorn 'app.relay:create_relay_from_env()'`
with ONE worker (the queue and the rate limit live in the process). The robot URL comes from
INVENTORY_WECOM_WEBHOOK_URL or the file named by INVENTORY_WECOM_WEBHOOK_URL_FILE.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue

from app.config import read_secret
from app.services import wecom

log = logging.getLogger(__name__)
QUEUE_LIMIT = 500
MAX_ALERTS_LISTED = 15
SEND_TRIES = 3
EXTENSION_KEY = "wecom_relay"


def _alert_line(alert: dict[str, Any]) -> str:
    labels, notes = alert.get("labels", {}), alert.get("annotations", {})
    where = " · ".join(f"{k}={labels[k]}" for k in ("instance", "job", "namespace", "service") if labels.get(k))
    lines = [f"- **{notes.get('summary') or labels.get('alertname', 'alert')}**"]
    if where:
        lines.append(f'  <font color="comment">{where}</font>')
    if notes.get("description"):
        lines.append(f"  > {notes['description']}")
    if notes.get("runbook_url"):
        lines.append(f"  [处理手册 Runbook]({notes['runbook_url']})")
    return "\n".join(lines)


def format_alerts(payload: dict[str, Any]) -> str:
    """One markdown message for one Alertmanager notification (grouped alerts), ≤ 4,096 bytes."""
    alerts = payload.get("alerts") or []
    common = payload.get("commonLabels") or {}
    group = payload.get("groupLabels") or {}
    firing = [a for a in alerts if a.get("status") == "firing"]
    resolved = [a for a in alerts if a.get("status") == "resolved"]
    name = group.get("alertname") or common.get("alertname") or "alerts"
    severity = common.get("severity", "")
    if payload.get("status") == "firing":
        title = f'### <font color="warning">告警 FIRING</font> {name}'
    else:
        title = f'### <font color="info">已恢复 RESOLVED</font> {name}'
    parts = [f"{title} [{severity}]" if severity else title]
    for heading, members in (("触发 Firing", firing), ("恢复 Resolved", resolved)):
        if members:
            parts.append(f"**{heading} ({len(members)})**")
            parts.extend(_alert_line(a) for a in members[:MAX_ALERTS_LISTED])
            if len(members) > MAX_ALERTS_LISTED:
                parts.append(f"… +{len(members) - MAX_ALERTS_LISTED}")
    return wecom.truncate_utf8("\n".join(parts))


class Relay:
    """The queue and the sender thread that drains it within the robot's rate limit."""

    def __init__(
        self,
        robot_url: str,
        *,
        send: Callable[[str, str], None] = wecom.send_markdown,
        limiter: wecom.RateLimiter | None = None,
    ) -> None:
        self.robot_url = robot_url
        self.send = send
        self.limiter = limiter or wecom.RateLimiter()
        self.queue: deque[str] = deque()
        self.condition = threading.Condition()
        self.sent = 0
        self.dropped = 0
        self._thread: threading.Thread | None = None

    def enqueue(self, message: str) -> bool:
        with self.condition:
            if len(self.queue) >= QUEUE_LIMIT:
                self.dropped += 1
                return False
            self.queue.append(message)
            self.condition.notify()
            return True

    def _next_message(self) -> str:
        """Pop queued messages, merged while they fit in one robot message."""
        message = self.queue.popleft()
        while self.queue:
            merged = f"{message}\n\n---\n\n{self.queue[0]}"
            if len(merged.encode("utf-8")) > wecom.MARKDOWN_LIMIT_BYTES:
                break
            message = merged
            self.queue.popleft()
        return message

    def drain_once(self) -> bool:
        """Send one (merged) message if the rate limit allows; False when there was nothing to do."""
        with self.condition:
            if not self.queue:
                return False
            if not self.limiter.try_acquire():
                return False
            message = self._next_message()
        for attempt in range(1, SEND_TRIES + 1):
            try:
                self.send(self.robot_url, message)
                self.sent += 1
                return True
            except wecom.DeliveryFailed as exc:
                log.warning("wecom relay send failed", extra={"attempt": attempt, "error": str(exc)})
                time.sleep(min(2**attempt, 10))
        self.dropped += 1
        log.error("wecom relay dropped a message after %d tries", SEND_TRIES)
        return True

    def _run(self) -> None:
        while True:
            with self.condition:
                while not self.queue:
                    self.condition.wait()
            if not self.drain_once():
                time.sleep(max(0.05, self.limiter.wait_seconds()))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wecom-relay", daemon=True)
            self._thread.start()


def create_relay(
    robot_url: str, *, relay: Relay | None = None, start: bool = True, storage_uri: str = "memory://"
) -> Flask:
    """The relay app; `storage_uri` is where the robot's rate limit is counted (RATELIMIT_STORAGE_URI)."""
    if not robot_url:
        raise ValueError(
            "the relay needs a robot URL (INVENTORY_WECOM_WEBHOOK_URL or INVENTORY_WECOM_WEBHOOK_URL_FILE)"
        )
    from app.observability.logging import configure_root_logger

    configure_root_logger(os.environ.get("INVENTORY_LOG_LEVEL", "INFO"))
    app = Flask(__name__)
    worker = relay or Relay(robot_url, limiter=wecom.RateLimiter(storage_uri=storage_uri))
    app.extensions[EXTENSION_KEY] = worker

    @app.post("/alertmanager")
    def receive() -> ResponseReturnValue:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict) or "alerts" not in payload:
            return jsonify(error="expected an Alertmanager webhook payload"), 400
        if not worker.enqueue(format_alerts(payload)):
            # Alertmanager retries a failed webhook, so a full queue sheds load upstream.
            return jsonify(error="queue full"), 503
        log.info(
            "alert notification queued",
            extra={"status": payload.get("status"), "alerts": len(payload["alerts"]), "queued": len(worker.queue)},
        )
        return jsonify(queued=len(worker.queue)), 202

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", queued=len(worker.queue), sent=worker.sent, dropped=worker.dropped)

    if start:
        worker.start()
    return app


def create_relay_from_env() -> Flask:
    """The WSGI entry point for gunicorn."""
    return create_relay(read_secret(os.environ, "INVENTORY_WECOM_WEBHOOK_URL"))
