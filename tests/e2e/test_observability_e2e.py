"""End to end on loopback: gunicorn (2 workers, the real gunicorn.conf.py), a real Prometheus
scraping it with the shipped rules, a real Alertmanager with the shipped routes (intervals
shortened by a test overlay), the WeCom relay, the notify dispatcher and a fake WeCom robot.

Only the timings differ from production: scrape/evaluation every second, InstanceDown's `for:`
3 s instead of 1 m, Alertmanager group_wait 1 s and group_interval 2 s.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import create_app
from app.config import Config
from app.extensions import db
from app.services import items, locations, notifications, stock
from tests.ops.conftest import tool
from tests.ops.fake_receiver import FakeReceiver, fake_receiver

REPO = Path(__file__).resolve().parents[2]
TOKEN = "e2e-metrics-token-0123456789abcdef"
ROBOT_KEY = "E2E-ROBOT-KEY-0123456789"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    robot: FakeReceiver
    app_port: int
    prom_port: int
    am_port: int
    relay_port: int
    database_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        self.procs[name] = subprocess.Popen(
            args, cwd=REPO, env=env or self.env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def start_app(self) -> None:
        env = {
            **self.env,
            "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "multiproc"),
            "GUNICORN_BIND": f"127.0.0.1:{self.app_port}",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "2",
            "GUNICORN_WORKER_TMP_DIR": str(self.tmp),
        }
        self.start("app", [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"), "wsgi:app"], env)
        wait_for(lambda: http_get(f"http://127.0.0.1:{self.app_port}/readyz")[0] == 200, 30, "the app")

    def prometheus_query(self, query: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        status, body = http_get(url)
        assert status == 200, body
        return list(json.loads(body)["data"]["result"])

    def flask(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def prometheus_overlay(stack: Stack) -> Path:
    """The shipped config and rules with loopback targets and InstanceDown's for: shortened."""
    rules_dir = stack.tmp / "rules"
    rules_dir.mkdir()
    for path in (REPO / "ops/prometheus/rules").glob("*.yml"):
        rules = yaml.safe_load(path.read_text())
        for group in rules["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                if rule.get("alert") == "InstanceDown":
                    rule["for"] = "3s"
        (rules_dir / path.name).write_text(yaml.safe_dump(rules, allow_unicode=True))
    token = stack.tmp / "metrics-token"
    token.write_text(TOKEN)
    config = yaml.safe_load((REPO / "ops/prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules_dir / "*.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{stack.am_port}"]}]
    [job] = config["scrape_configs"]
    job["authorization"]["credentials_file"] = str(token)
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{stack.app_port}"]
    path = stack.tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def alertmanager_overlay(stack: Stack) -> Path:
    config = yaml.safe_load((REPO / "ops/alertmanager/alertmanager.yml").read_text())
    config["templates"] = [str(REPO / "ops/alertmanager/templates/*.tmpl")]
    config["route"].update(group_wait="1s", group_interval="2s")
    for route in config["route"]["routes"]:
        route["group_wait"] = "1s"
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"http://127.0.0.1:{stack.relay_port}/alertmanager"
    path = stack.tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus, alertmanager = tool("prometheus"), tool("prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("e2e")
    (tmp / "multiproc").mkdir()
    database_url = f"sqlite:///{tmp / 'inventory.db'}"
    with fake_receiver() as robot:
        s = Stack(tmp, {}, robot, free_port(), free_port(), free_port(), free_port(), database_url)
        s.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp),
            "DATABASE_URL": database_url,
            "SECRET_KEY": "e2e-secret-key-" + "x" * 40,
            "INVENTORY_ENV": "testing",
            "INVENTORY_METRICS_TOKEN": TOKEN,
            "INVENTORY_WECOM_WEBHOOK_URL": f"{robot.url}/cgi-bin/webhook/send?key={ROBOT_KEY}",
            "INVENTORY_BASE_URL": "https://inventory.example.cn",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        try:
            upgraded = s.flask("db", "upgrade")
            assert upgraded.returncode == 0, upgraded.stderr
            s.start(
                "relay", [sys.executable, "-m", "flask", "--app", "wsgi", "wecom-relay", "--port", str(s.relay_port)]
            )
            s.start_app()
            s.start(
                "alertmanager",
                [
                    alertmanager,
                    f"--config.file={alertmanager_overlay(s)}",
                    f"--storage.path={tmp / 'am'}",
                    f"--web.listen-address=127.0.0.1:{s.am_port}",
                    "--cluster.listen-address=",
                ],
            )
            s.start(
                "prometheus",
                [
                    prometheus,
                    f"--config.file={prometheus_overlay(s)}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{s.prom_port}",
                ],
            )
            wait_for(lambda: http_get(f"http://127.0.0.1:{s.relay_port}/healthz")[0] == 200, 30, "the relay")
            wait_for(lambda: http_get(f"http://127.0.0.1:{s.am_port}/-/ready")[0] == 200, 30, "Alertmanager")
            wait_for(lambda: http_get(f"http://127.0.0.1:{s.prom_port}/-/ready")[0] == 200, 30, "Prometheus")
            yield s
        finally:
            for name in list(s.procs):
                s.stop(name)


def metric_total(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_metrics_from_both_gunicorn_workers_add_up_in_metrics_and_in_prometheus(stack: Stack):
    base = f"http://127.0.0.1:{stack.app_port}"
    assert http_get(f"{base}/metrics")[0] == 401

    def hit(n: int) -> int:
        return http_get(f"{base}/e2e-missing-{n}", {"X-Request-ID": f"e2e-{n}"})[0]

    def serving_pids() -> set[str]:
        return {p.name.split("_")[-1] for p in (stack.tmp / "multiproc").glob("histogram_*.db")}

    # Both workers accept from one socket; send batches until each has served some requests.
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while sent == 0 or (len(serving_pids()) < 2 and sent < 2000):
            statuses = list(pool.map(hit, range(sent, sent + 40)))
            assert statuses == [404] * 40
            sent += 40
    assert len(serving_pids()) >= 2, f"only one worker served: {serving_pids()}"

    status, text = http_get(f"{base}/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    assert metric_total(text, "inventory_http_request_duration_seconds_count", route="<unmatched>") == sent
    assert metric_total(text, "inventory_http_request_total", status="404") == sent

    query = 'sum(inventory_http_request_duration_seconds_count{job="inventory", route="<unmatched>"})'

    def prometheus_sees_all() -> bool:
        return [float(r["value"][1]) for r in stack.prometheus_query(query)] == [float(sent)]

    wait_for(prometheus_sees_all, 30, f"Prometheus to see {sent} requests")
    [up] = stack.prometheus_query('up{job="inventory"}')
    assert up["value"][1] == "1"

    access = [json.loads(line) for line in stack.logs["app"].read_text().splitlines() if line.startswith("{")]
    app_lines = [line for line in access if line.get("request_id") == "e2e-7" and line["logger"] == "inventory.access"]
    assert len(app_lines) == 1 and app_lines[0]["status"] == 404 and app_lines[0]["method"] == "GET"
    # One access line per request: gunicorn's own is off unless GUNICORN_ACCESS_LOG=true.
    assert not [line for line in access if line["logger"] == "gunicorn.access"]
    assert TOKEN not in stack.logs["app"].read_text()


def test_instance_down_reaches_the_robot_and_so_does_its_resolution(stack: Stack):
    def markdown(word: str) -> list[str]:
        return [m for m in stack.robot.markdown() if "InstanceDown" in m and word in m]

    stack.stop("app")
    [firing] = wait_for(lambda: markdown("FIRING"), 60, "the InstanceDown message")[:1]
    assert f"127.0.0.1:{stack.app_port}" in firing and "[critical]" in firing
    assert "#instancedown" in firing

    stack.start_app()
    [resolved] = wait_for(lambda: markdown("RESOLVED"), 60, "the resolved message")[:1]
    assert f"127.0.0.1:{stack.app_port}" in resolved
    assert ROBOT_KEY not in stack.logs["relay"].read_text()


def test_a_low_stock_event_reaches_the_robot_through_the_dispatcher(stack: Stack):
    app = create_app(Config(SQLALCHEMY_DATABASE_URI=stack.database_url, SECRET_KEY="x" * 40, TESTING=True))
    with app.app_context():
        locations.create_warehouse(code="E2E", name="端到端仓库")
        locations.create_location(warehouse="E2E", code="E2E-A-01-01")
        items.create_item(sku="E2E-BOLT", name="端到端螺栓 Bolt", reorder_point=5)
        stock.receive_stock(sku="E2E-BOLT", location="E2E-A-01-01", quantity=10, user="e2e")
        stock.issue_stock(sku="E2E-BOLT", location="E2E-A-01-01", quantity=7, user="e2e")
        notifications.create_target(name="E2E 群", kind="wecom", warehouses=["E2E"])
        db.session.remove()
        db.engine.dispose()

    result = stack.flask("notify", "once")

    assert result.returncode == 0, result.stderr
    assert "claimed 1, delivered 1" in result.stdout
    [message] = [m for m in stack.robot.markdown() if "E2E-BOLT" in m]
    assert "端到端螺栓 Bolt" in message and "E2E-A-01-01" in message
    assert "(https://inventory.example.cn/items/E2E-BOLT)" in message
    assert ROBOT_KEY not in result.stdout + result.stderr
