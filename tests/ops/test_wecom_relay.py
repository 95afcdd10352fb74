"""The Alertmanager -> WeCom relay: markdown formatting, the 4,096-byte limit, merging, rate limit."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time

import redis

from app.relay import Relay, create_relay, format_alerts
from app.services import wecom
from tests.ops.fake_receiver import fake_receiver


def notification(status="firing", count=1, description="web-1 cannot be scraped", **common):
    alerts = [
        {
            "status": status,
            "labels": {
                "alertname": "InstanceDown",
                "instance": f"web-{n}:8000",
                "job": "inventory",
                "severity": "critical",
            },
            "annotations": {
                "summary": f"Inventory instance web-{n}:8000 is down",
                "description": description,
                "runbook_url": "https://inventory.invalid/ops/README.md#instancedown",
            },
        }
        for n in range(count)
    ]
    return {
        "version": "4",
        "status": status,
        "receiver": "wecom-critical",
        "groupLabels": {"alertname": "InstanceDown", "service": "inventory"},
        "commonLabels": {"alertname": "InstanceDown", "severity": "critical", **common},
        "commonAnnotations": {},
        "alerts": alerts,
    }


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_firing_and_resolved_notifications_become_markdown_with_summary_instance_and_runbook():
    firing = format_alerts(notification())
    assert firing.startswith('### <font color="warning">告警 FIRING</font> InstanceDown [critical]')
    assert "**Inventory instance web-0:8000 is down**" in firing and "instance=web-0:8000" in firing
    assert "> web-1 cannot be scraped" in firing
    assert "[处理手册 Runbook](https://inventory.invalid/ops/README.md#instancedown)" in firing
    resolved = format_alerts(notification(status="resolved"))
    assert "已恢复 RESOLVED" in resolved and "**恢复 Resolved (1)**" in resolved


def test_huge_notifications_are_cut_to_4096_bytes_on_a_character_boundary():
    text = format_alerts(notification(count=40, description="数据库连接失败，" * 60))
    encoded = text.encode("utf-8")
    assert len(encoded) <= wecom.MARKDOWN_LIMIT_BYTES
    assert encoded.decode("utf-8") == text  # no half character at the cut
    assert text.endswith("…(truncated)")


def test_truncation_never_leaves_half_a_link():
    text = "x" * 4040 + " [处理手册 Runbook](https://inventory.invalid/ops/README.md#instancedown)"
    cut = wecom.truncate_utf8(text)
    assert len(text.encode()) > 4096
    assert len(cut.encode()) <= 4096 and "[" not in cut and cut.endswith("…(truncated)")


def test_queued_messages_are_merged_while_they_fit_and_sent_within_the_rate_limit(monkeypatch):
    sent = []
    clock = FakeClock()
    monkeypatch.setattr(time, "time", clock)
    relay = Relay("http://robot", send=lambda url, text: sent.append(text), limiter=wecom.RateLimiter(2))
    for n in range(5):
        relay.enqueue(f"message {n} " + "x" * 1500)

    while relay.drain_once():
        pass
    assert len(sent) == 2  # two messages of two merged notifications each, then the limit
    assert all(len(text.encode()) <= 4096 for text in sent)
    assert "message 0" in sent[0] and "message 1" in sent[0] and "message 2" in sent[1]
    assert len(relay.queue) == 1

    clock.now += 61  # a minute after the first sends (a send exactly 60 s ago still counts)
    assert relay.drain_once() and "message 4" in sent[2] and not relay.queue


def test_twenty_messages_a_minute_at_most(monkeypatch):
    clock = FakeClock()
    # The limits library's memory storage reads time.time().
    monkeypatch.setattr(time, "time", clock)
    limiter = wecom.RateLimiter()
    assert sum(limiter.try_acquire() for _ in range(25)) == 20
    assert limiter.wait_seconds() == 60
    clock.now += 30
    assert not limiter.try_acquire() and limiter.wait_seconds() == 30
    clock.now += 31
    assert limiter.try_acquire()


def test_the_relay_accepts_alertmanager_webhooks_and_posts_markdown_to_the_robot():
    with fake_receiver() as robot:
        app = create_relay(f"{robot.url}/cgi-bin/webhook/send?key=RELAY-KEY", start=False)
        client = app.test_client()
        assert client.post("/alertmanager", json={"nope": 1}).status_code == 400
        answer = client.post("/alertmanager", json=notification())
        assert answer.status_code == 202 and answer.json == {"queued": 1}
        relay = app.extensions["wecom_relay"]
        assert relay.drain_once()

        [text] = robot.markdown()
        assert "InstanceDown" in text and "FIRING" in text
        assert robot.received[0].path == "/cgi-bin/webhook/send?key=RELAY-KEY"
        assert client.get("/healthz").json == {"status": "ok", "queued": 0, "sent": 1, "dropped": 0}


def test_the_robot_limit_is_shared_through_a_redis_storage(tmp_path):
    """Two processes (here two limiters) on RATELIMIT_STORAGE_URI=redis:// share one budget."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pidfile = tmp_path / "redis.pid"
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--dir",
            str(tmp_path),
        ],
        check=True,
    )
    try:
        uri = f"redis://127.0.0.1:{port}"
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(200):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            time.sleep(0.05)
        one, other = (wecom.RateLimiter(3, key="robot-a", storage_uri=uri) for _ in range(2))
        assert [one.try_acquire(), other.try_acquire(), one.try_acquire()] == [True, True, True]
        assert not other.try_acquire() and 0 < one.wait_seconds() <= 60
        assert wecom.RateLimiter(3, key="robot-b", storage_uri=uri).try_acquire()
    finally:
        client.shutdown(nosave=True)
