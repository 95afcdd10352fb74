"""JSON logs on stdout: fixed field names, request ids, and no secret in any line."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest
from flask_login import login_user

from app.extensions import db
from app.models import User
from app.observability.logging import _SECRET_PATTERNS, configure_root_logger, redact
from app.services import notifications, stock, users
from tests.factories import DEFAULT_PASSWORD
from tests.ops.fake_receiver import fake_receiver

FIELDS = {
    "timestamp",
    "level",
    "logger",
    "message",
    "request_id",
    "user_id",
    "method",
    "route",
    "status",
    "duration_ms",
}


@pytest.fixture(autouse=True)
def _json_logs(app):
    """The session app ran Alembic's fileConfig, which replaces the root handlers: put ours back."""
    configure_root_logger()


def json_lines(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def access_lines(text: str) -> list[dict]:
    return [line for line in json_lines(text) if line["logger"] == "inventory.access"]


def test_each_request_logs_one_json_line_with_the_fixed_fields_and_echoes_the_request_id(make_app, capsys):
    app = make_app()
    app.add_url_rule("/probe/<name>", "probe", lambda name: "ok")
    capsys.readouterr()

    response = app.test_client().get("/probe/x?token=abc", headers={"X-Request-ID": "req-42.abc"})

    assert response.headers["X-Request-ID"] == "req-42.abc"
    [line] = access_lines(capsys.readouterr().out)
    assert line.keys() >= FIELDS
    assert line["request_id"] == "req-42.abc" and line["method"] == "GET" and line["route"] == "/probe/<name>"
    assert line["status"] == 200 and line["level"] == "INFO" and isinstance(line["duration_ms"], float)
    assert datetime.fromisoformat(line["timestamp"]).utcoffset().total_seconds() == 0
    assert line["timestamp"].endswith("Z")
    assert "token" not in json.dumps(line)  # the query string is never logged


def test_a_missing_or_unsafe_request_id_is_replaced_by_a_generated_one(make_app, capsys):
    client = make_app().test_client()
    generated = client.get("/nowhere").headers["X-Request-ID"]
    unsafe = client.get("/nowhere", headers={"X-Request-ID": "bad id <script>" + "x" * 200}).headers["X-Request-ID"]
    assert len(generated) == 32 and len(unsafe) == 32 and generated != unsafe
    lines = access_lines(capsys.readouterr().out)
    assert [line["request_id"] for line in lines] == [generated, unsafe]
    assert lines[0]["route"] is None and lines[0]["status"] == 404


def test_lines_carry_the_signed_in_user_id(make_app, factory, capsys):
    app = make_app()

    def sign_in_as(user_id: int) -> str:
        login_user(db.session.get(User, user_id))
        return "ok"

    app.add_url_rule("/as/<int:user_id>", "as_user", sign_in_as)
    user = factory.user(role="viewer")
    capsys.readouterr()
    app.test_client().get(f"/as/{user.id}")
    [line] = access_lines(capsys.readouterr().out)
    assert line["user_id"] == str(user.id) and line["route"] == "/as/<int:user_id>"


def test_sign_in_never_logs_the_password_or_the_session_cookie(app, factory, capsys):
    user = factory.user(role="clerk", password="Very-Secret-Pa55word!")
    client = app.test_client()
    url = "/login" if any(rule.rule == "/login" for rule in app.url_map.iter_rules()) else "/notifications/targets"
    capsys.readouterr()

    wrong = client.post(url, data={"username": user.username, "password": "Wrong-Secret-Pa55word!"})
    right = client.post(url, data={"username": user.username, "password": "Very-Secret-Pa55word!"})

    output = capsys.readouterr().out
    assert len(access_lines(output)) == 2 and wrong.status_code != 500 and right.status_code != 500
    assert "Very-Secret-Pa55word!" not in output and "Wrong-Secret-Pa55word!" not in output
    cookies = [c.split(";")[0].split("=", 1)[1] for c in right.headers.getlist("Set-Cookie")]
    assert any(len(value) > 16 for value in cookies)  # the signed session cookie
    for value in cookies:
        assert not value or value not in output


def test_api_calls_never_log_the_bearer_token(app, factory, capsys):
    user = factory.user(role="clerk", password=DEFAULT_PASSWORD)
    with app.app_context():
        _token, secret = users.create_token(username=user.username, scope="read")
        db.session.remove()
    client = app.test_client()
    capsys.readouterr()

    with app.test_request_context("/api/v1/items"):
        # Even a careless line that prints the header is masked before it reaches stdout.
        logging.getLogger("app.api").warning("Authorization: Bearer %s", secret)
    client.get("/api/v1/items", headers={"Authorization": f"Bearer {secret}"})
    client.get("/api/v1/items", headers={"Authorization": "Bearer inv_not_a_real_token_123456"})

    output = capsys.readouterr().out
    assert len(access_lines(output)) == 2
    assert "Bearer [REDACTED]" in output
    assert secret not in output and "inv_not_a_real_token_123456" not in output


def test_webhook_delivery_never_logs_the_robot_key_or_the_webhook_secret(app, factory, capsys):
    warehouse = factory.warehouse(code="WHL")
    item, location = factory.item(sku="LOG-1", reorder_point=5), factory.location(warehouse=warehouse)
    factory.stock(item, location, 10)
    with fake_receiver() as robot:
        robot.status = 500
        robot_url = f"{robot.url}/cgi-bin/webhook/send?key=SECRET-ROBOT-KEY-42"
        with app.app_context():
            notifications.create_target(name="群", kind="wecom", warehouses=["WHL"])
            notifications.create_target(
                name="hook",
                kind="webhook",
                url=f"{robot.url}/hook?token=HOOK-TOKEN-42",
                secret="HMAC-SECRET-42",
                warehouses=["WHL"],
            )
            stock.issue_stock(sku="LOG-1", location=location.code, quantity=6, user="clerk")
            capsys.readouterr()
            report = notifications.dispatch_once(notifications.Channel(robot_url=robot_url, base_url="http://x"))
            db.session.remove()

    output = capsys.readouterr().out
    assert report.retrying == 1 and len(robot.received) == 2
    assert "notification delivery failed" in output
    for secret in ("SECRET-ROBOT-KEY-42", "HOOK-TOKEN-42", "HMAC-SECRET-42"):
        assert secret not in output


def test_fields_named_like_credentials_are_never_written(make_app, capsys):
    with make_app().test_request_context("/"):
        logging.getLogger("app.test").warning("careless", extra={"password": "pw-1", "api_token": "tk-2", "sku": "A-1"})
    [line] = [line for line in json_lines(capsys.readouterr().out) if line["message"] == "careless"]
    assert line["password"] == line["api_token"] == "[REDACTED]" and line["sku"] == "A-1"


def test_redaction_masks_keys_tokens_passwords_and_cookies():
    text = redact(
        "POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc-123 Authorization: Bearer inv_xyz "
        "password=hunter2 Cookie: session=eyJhbGciOi"
    )
    for secret in ("abc-123", "inv_xyz", "hunter2", "eyJhbGciOi"):
        assert secret not in text
    assert text.count("[REDACTED]") >= 4


def test_one_shot_commands_keep_stdout_for_their_output_and_log_to_stderr(app):
    result = app.test_cli_runner().invoke(args=["notify", "audit"])
    assert result.exit_code == 0
    assert result.stdout.startswith("ledger audit: 0 mismatch(es)")
    assert "{" not in result.stdout
    [line] = [json.loads(raw) for raw in result.stderr.splitlines() if raw.startswith("{")]
    assert line["message"] == "ledger audit finished" and line["mismatches"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "BEARER abc.def",
        "GET /x?Signature=s3cr3tval",
        "GET /x?access_token=s3cr3tval&a=1",
        "PASSWD: s3cr3tval",
        "Api_Key=s3cr3tval",
        "csrf_token='s3cr3tval'",
        "SESSION=s3cr3tval",
        "secret: s3cr3tval",
    ],
)
def test_the_quick_check_lets_no_secret_shape_through(text):
    # redact() skips its substitutions when one search finds none of the words they start from.
    assert "s3cr3tval" not in redact(text) and "abc.def" not in redact(text)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    assert redact(text) == text
