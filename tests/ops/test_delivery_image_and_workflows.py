"""The container image, the gunicorn settings and the GitHub Actions workflows keep their promises.

No Docker engine or GitHub runner exists here: these tests read the files the engine and the runner
will execute (actionlint, hadolint and the workflow schema run in .ci/delivery-checks).
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import create_app
from app.config import Config
from app.observability import gunicorn_hooks

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
WORKFLOWS = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / ".github/workflows").glob("*.yml")}
SHA_PIN = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v(\d+)\.\d+\.\d+$")


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load(WORKFLOWS[name])


def steps(doc: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return doc["jobs"][job]["steps"]


def test_image_builds_on_one_pinned_base_and_runs_as_a_numeric_non_root_user() -> None:
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(bases) == 2 and len(set(bases)) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", bases[0]), bases[0]
    runtime = DOCKERFILE[DOCKERFILE.rindex("FROM ") :]
    user = re.findall(r"^USER (\d+)(?::\d+)?$", runtime, re.M)
    assert user and int(user[-1]) != 0
    assert "latest" not in DOCKERFILE
    assert re.search(r"^EXPOSE 8000$", runtime, re.M)
    assert re.search(r'org\.opencontainers\.image\.version="\$\{INVENTORY_VERSION\}"', runtime)
    assert re.search(r"^ARG INVENTORY_VERSION=", runtime, re.M) and "INVENTORY_VERSION=${INVENTORY_VERSION}" in runtime
    assert re.search(r"PROMETHEUS_MULTIPROC_DIR=/run/prometheus", runtime)
    assert "chown inventory:inventory /run/prometheus" in runtime
    assert '"--config", "/app/gunicorn.conf.py"' in runtime
    assert "pybabel compile --statistics -d translations" in DOCKERFILE, "catalogues are compiled at build time"
    assert list((ROOT / "translations").glob("*/LC_MESSAGES/messages.po"))
    # Build tools and wheels stay in the build stage: the runtime copies only the venv and the app.
    assert re.findall(r"^COPY --from=build (\S+)", runtime, re.M) == ["/opt/venv", "--chown=root:root"]


def test_dockerignore_is_an_allow_list_of_what_exists() -> None:
    lines = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = [ln[1:].rstrip("/") for ln in lines if ln.startswith("!")]
    expected = {
        "app",
        "templates",
        "static",
        "translations",
        "migrations",
        "wsgi.py",
        "gunicorn.conf.py",
        "requirements.lock",
    }
    assert expected <= set(allowed)
    assert not {".env", "instance", ".git", ".venv", "tests"} & set(allowed)
    for path in allowed:
        assert path == "static" or (ROOT / path).exists(), path


def test_gunicorn_reads_every_knob_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    knobs = {
        "GUNICORN_BIND": "127.0.0.1:9999",
        "GUNICORN_WORKERS": "5",
        "GUNICORN_THREADS": "3",
        "GUNICORN_TIMEOUT": "41",
        "GUNICORN_GRACEFUL_TIMEOUT": "17",
    }
    for name, value in knobs.items():
        monkeypatch.setenv(name, value)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["bind"] == ["127.0.0.1:9999"]
    assert (settings["workers"], settings["threads"], settings["timeout"], settings["graceful_timeout"]) == (
        5,
        3,
        41,
        17,
    )
    assert settings["worker_class"] == "sync"  # gunicorn itself runs gthread when threads > 1
    assert settings["on_starting"] is gunicorn_hooks.on_starting
    assert settings["child_exit"] is gunicorn_hooks.child_exit
    assert settings["logconfig_dict"] is gunicorn_hooks.logconfig_dict


def test_gunicorn_defaults_match_the_pod_grace_period(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GUNICORN_GRACEFUL_TIMEOUT", "GUNICORN_TIMEOUT", "GUNICORN_BIND"):
        monkeypatch.delenv(name, raising=False)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    web = yaml.safe_load((ROOT / "ops/k8s/base/web-deployment.yaml").read_text())["spec"]["template"]["spec"]
    sleep = int(web["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert settings["bind"] == ["0.0.0.0:8000"]
    assert web["terminationGracePeriodSeconds"] > sleep + settings["graceful_timeout"]


def test_the_release_version_shows_in_readyz_metrics_and_footer() -> None:
    token = "m" * 32
    app = create_app(
        Config(
            SQLALCHEMY_DATABASE_URI="sqlite://", TESTING=True, INVENTORY_VERSION="4.5.6", INVENTORY_METRICS_TOKEN=token
        )
    )
    client = app.test_client()
    assert client.get("/readyz").get_json()["version"] == "4.5.6"
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    assert 'inventory_app_info{version="4.5.6"} 1.0' in metrics
    assert "4.5.6" in client.get("/login").get_data(as_text=True)


def test_every_third_party_action_is_pinned_by_sha_with_its_version() -> None:
    uses = [ln for text in WORKFLOWS.values() for ln in text.splitlines() if re.match(r"^\s*(-\s+)?uses:", ln)]
    assert uses
    pins: dict[str, set[str]] = {}
    for line in uses:
        if "uses: ./" in line:
            continue
        match = SHA_PIN.match(line)
        assert match, f"not pinned by full SHA with a # vX.Y.Z comment: {line.strip()}"
        pins.setdefault(match[1], set()).add(match[2])
    assert all(len(shas) == 1 for shas in pins.values()), pins
    majors = {match[1]: int(match[3]) for match in map(SHA_PIN.match, uses) if match}
    assert majors["actions/checkout"] >= 5 and majors["actions/setup-python"] >= 6
    assert majors["docker/build-push-action"] >= 7


def test_workflows_use_least_privilege_and_concurrency_groups() -> None:
    for name in WORKFLOWS:
        doc = workflow(name)
        assert doc["permissions"] == {"contents": "read"}, name
        assert "group" in doc["concurrency"], name
    release = workflow("release.yml")
    writers = {job: spec.get("permissions") for job, spec in release["jobs"].items() if spec.get("permissions")}
    assert writers == {"promote": {"contents": "write"}}
    for text in WORKFLOWS.values():
        for block in re.findall(r"run: [|>]-?\n((?:\s{10,}.*\n)+)|run: (.*)", text):
            assert "secrets." not in "".join(block), "secrets go through env:, never into a run script"


def test_pull_requests_run_every_gate() -> None:
    ci = workflow("ci.yml")
    triggers = ci[True] if True in ci else ci["on"]  # PyYAML reads the key `on` as True
    assert {"pull_request", "push", "workflow_call"} <= set(triggers)
    runs = "\n".join(s.get("run", "") for job in ci["jobs"] for s in steps(ci, job))
    # The offline gates are make targets, the same ones `make ci` (and so .ci/run) runs; only what
    # needs the network stays a workflow command.
    for gate in (
        "make lint typecheck",
        "make test",
        "make ops-check",
        "helm lint --strict",
        "helm template",
        "pip-audit",
    ):
        assert gate in runs, gate
    assert "--require-hashes" in runs
    makefile = (ROOT / "Makefile").read_text()
    ci_targets = re.search(r"^ci: (.*)$", makefile, re.M)
    assert ci_targets is not None and ci_targets[1].split() == ["lint", "typecheck", "ops-check", "test"]
    assert "make ci" in (ROOT / ".ci" / "run").read_text()
    mysql = ci["jobs"]["test"]["services"]["mysql"]
    assert mysql["image"].startswith("mysql:8") and "mysqladmin ping" in mysql["options"]
    assert ci["jobs"]["sonar"]["if"] == "needs.sonar-gate.outputs.enabled == 'true'"
    assert "sonar.qualitygate.wait=true" in runs


def test_a_tag_becomes_a_scanned_image_and_an_overlay_commit_never_latest() -> None:
    release = workflow("release.yml")
    triggers = release[True] if True in release else release["on"]
    assert triggers == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    image = {s.get("name", s.get("uses", "")): s for s in steps(release, "image")}
    meta = image["Image tags X.Y.Z and X.Y (no latest)"]["with"]
    assert meta["flavor"] == "latest=false"
    assert meta["tags"].split() == ["type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}"]
    scan = image["Trivy image scan (fails on fixable HIGH/CRITICAL)"]["with"]
    assert (scan["severity"], scan["ignore-unfixed"], scan["exit-code"]) == ("HIGH,CRITICAL", True, "1")
    names = list(image)
    assert names.index("Trivy image scan (fails on fixable HIGH/CRITICAL)") < names.index(
        "Push (same layers, from the build cache)"
    )
    assert "type=gha" in image["Build into the local engine for the scan"]["with"]["cache-to"]
    assert release["jobs"]["image"]["needs"] == ["gates"]
    promote = "\n".join(s.get("run", "") for s in steps(release, "promote"))
    assert 'kustomize edit set image "inventory=${IMAGE}:${VERSION}"' in promote
    assert "for overlay in staging production" in promote and "git push origin HEAD:main" in promote
