"""The promises of the Kubernetes manifests and the Helm chart, checked on their rendered output.

Renders come from the pinned checkers in .ci-tools/ (kubectl kustomize, helm-python-sdk), which
`.ci/delivery-checks` installs; outside CI the fixture installs them itself the first time.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import create_app
from app.config import Config

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("DELIVERY_TOOLS_DIR", ROOT / ".ci-tools"))
OVERLAYS = ["staging", "production", "production-bluegreen"]
RENDERS = ["base", *OVERLAYS, "helm"]
WORKLOADS = {"Deployment", "Job", "Rollout"}
HASHED_CONFIGMAP = re.compile(r"^(inventory-config)-[a-z0-9]{10}$")

Doc = dict[str, Any]


@pytest.fixture(scope="session")
def tools() -> Path:
    if not (TOOLS / "bin" / "kubectl").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"delivery checkers missing in {TOOLS}: `make deps` installs them before pytest")
        done = subprocess.run([str(ROOT / ".ci" / "delivery-checks"), "--install-only"], check=False)
        if done.returncode != 0:
            pytest.fail("could not install the delivery checkers: run .ci/delivery-checks --install-only")
    return TOOLS / "bin"


@cache
def _render(tools: Path, name: str) -> list[Doc]:
    if name.startswith("helm"):
        # "helm" renders the chart's defaults, "helm-production" with ci/production-values.yaml.
        values = ["--values", str(ROOT / f"ops/helm/inventory/ci/{name[5:]}-values.yaml")] if name != "helm" else []
        command = [str(tools / "python"), str(ROOT / "ops/helm/render.py"), *values]
    else:
        path = "ops/k8s/base" if name == "base" else f"ops/k8s/overlays/{name}"
        command = [str(tools / "kubectl"), "kustomize", str(ROOT / path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, f"rendering {name} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(params=RENDERS)
def rendered(request: pytest.FixtureRequest, tools: Path) -> list[Doc]:
    return _render(tools, request.param)


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_specs(docs: list[Doc]) -> list[tuple[str, Doc]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in WORKLOADS and "template" in d["spec"]
    ]


def containers(docs: list[Doc]) -> list[tuple[str, Doc]]:
    return [(f"{where}/{c['name']}", c) for where, spec in pod_specs(docs) for c in spec["containers"]]


def test_web_rolls_one_new_pod_at_a_time_and_never_below_capacity(rendered: list[Doc]) -> None:
    strategy = find(rendered, "Deployment", "inventory-web")["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_probe_paths_exist_in_the_app(rendered: list[Doc]) -> None:
    app = create_app(Config(SQLALCHEMY_DATABASE_URI="sqlite://", TESTING=True))
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    web = find(rendered, "Deployment", "inventory-web")["spec"]["template"]["spec"]["containers"][0]
    probes = {kind: web[kind]["httpGet"]["path"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    assert set(probes.values()) <= routes


def test_every_image_is_a_pinned_release_tag(rendered: list[Doc]) -> None:
    images = {where: c["image"] for where, c in containers(rendered)}
    assert images
    for where, image in images.items():
        repository, _, tag = image.rpartition(":")
        assert repository and "/" in repository, f"{where}: {image} has no registry/repository"
        assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{where}: {image} is not an X.Y.Z release tag"


def test_every_container_sets_requests_and_limits(rendered: list[Doc]) -> None:
    for where, container in containers(rendered):
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            assert set(resources.get(section, {})) == {"cpu", "memory"}, f"{where}: {section} incomplete"


def test_every_pod_runs_non_root_on_a_read_only_filesystem(rendered: list[Doc]) -> None:
    for where, spec in pod_specs(rendered):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"] == {"drop": ["ALL"]}, where
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/tmp", "/run/prometheus"} <= mounts  # noqa: S108, f"{where}: /tmp and the metrics dir must be writable"


def test_stopping_fits_inside_the_grace_period(rendered: list[Doc]) -> None:
    spec = find(rendered, "Deployment", "inventory-web")["spec"]["template"]["spec"]
    config = next(
        d
        for d in rendered
        if d["kind"] == "ConfigMap" and HASHED_CONFIGMAP.sub(r"\1", d["metadata"]["name"]) == "inventory-config"
    )
    sleep = int(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
    graceful = int(config["data"]["GUNICORN_GRACEFUL_TIMEOUT"])
    # Endpoint removal reaches kube-proxy and the ingress within a few seconds; the sleep covers it.
    assert sleep >= 5
    assert spec["terminationGracePeriodSeconds"] > sleep + graceful


@pytest.mark.parametrize("name", ["base", *OVERLAYS])
def test_migration_runs_as_a_presync_hook_after_its_secret(tools: Path, name: str) -> None:
    docs = _render(tools, name)
    job = find(docs, "Job", "inventory-migrate")
    secret = find(docs, "ExternalSecret", "inventory-secrets")
    notes = job["metadata"]["annotations"]
    assert notes["argocd.argoproj.io/hook"] == "PreSync"
    assert secret["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert int(secret["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < int(
        notes["argocd.argoproj.io/sync-wave"]
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["flask", "--app", "wsgi", "db", "upgrade"]
    # On a first sync nothing of the Sync phase exists yet: the hook may use only the hook-made Secret.
    assert "serviceAccountName" not in pod
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": secret["spec"]["target"]["name"]}}]
    hooks = [d for d in docs if "argocd.argoproj.io/hook" in d["metadata"].get("annotations", {})]
    assert {d["kind"] for d in hooks} == {"Job", "ExternalSecret"}, "Deployments must be ordinary Sync resources"


def test_workers_run_the_commands_the_app_provides(tools: Path) -> None:
    docs = _render(tools, "base")
    app = create_app(Config(SQLALCHEMY_DATABASE_URI="sqlite://", TESTING=True))
    commands = {
        name: find(docs, "Deployment", f"inventory-{name}")["spec"]["template"]["spec"]["containers"][0]["command"]
        for name in ("notifier", "jobs", "wecom-relay")
    }
    assert commands["notifier"][:5] == ["flask", "--app", "wsgi", "notify", "run"]
    assert commands["jobs"] == ["flask", "--app", "wsgi", "jobs", "run"]
    assert "run" in app.cli.commands["jobs"].commands  # type: ignore[attr-defined]
    assert commands["wecom-relay"][3] == "wecom-relay"
    assert "notify" in app.cli.commands and "run" in app.cli.commands["notify"].commands  # type: ignore[attr-defined]
    assert "wecom-relay" in app.cli.commands
    relay = find(docs, "Deployment", "inventory-wecom-relay")["spec"]["template"]["spec"]["containers"][0]
    port = str(relay["ports"][0]["containerPort"])
    assert commands["wecom-relay"][-4:] == ["--host", "0.0.0.0", "--port", port]  # noqa: S104 - the pod's interface


def _comparable(doc: Doc) -> Doc:
    """What Helm and Kustomize must agree on: everything but labels, annotations and namespace."""
    doc = copy.deepcopy(doc)
    for key in ("labels", "annotations", "namespace"):
        doc["metadata"].pop(key, None)
    template = doc.get("spec", {}).get("template")
    if isinstance(template, dict):
        template.pop("metadata", None)
    job = doc.get("spec", {}).get("jobTemplate")  # a CronJob: its Job and pod templates carry labels too
    if isinstance(job, dict):
        job.pop("metadata", None)
        job.get("spec", {}).get("template", {}).pop("metadata", None)

    def unhash(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: unhash(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unhash(v) for v in value]
        return HASHED_CONFIGMAP.sub(r"\1", value) if isinstance(value, str) else value

    return unhash(doc)


def test_helm_default_render_equals_the_kustomize_base(tools: Path) -> None:
    def index(docs: list[Doc]) -> dict[tuple[str, str], Doc]:
        return {(d["kind"], HASHED_CONFIGMAP.sub(r"\1", d["metadata"]["name"])): _comparable(d) for d in docs}

    base, helm = index(_render(tools, "base")), index(_render(tools, "helm"))
    assert sorted(helm) == sorted(base)
    for key in base:
        assert helm[key] == base[key], f"{key[0]}/{key[1]} differs between Helm and Kustomize"


def test_overlays_differ_in_hosts_replicas_and_resources(tools: Path) -> None:
    def facts(name: str) -> tuple[str, int, str, str]:
        docs = _render(tools, name)
        web = find(docs, "Deployment", "inventory-web")["spec"]["template"]["spec"]["containers"][0]
        return (
            find(docs, "Ingress", "inventory-web")["spec"]["rules"][0]["host"],
            find(docs, "HorizontalPodAutoscaler", "inventory-web")["spec"]["minReplicas"],
            web["resources"]["limits"]["memory"],
            {d["metadata"].get("namespace") for d in docs}.pop(),
        )

    staging, production = facts("staging"), facts("production")
    assert staging[0] == "inventory.staging.example.com" and production[0] == "inventory.example.com"
    assert production[1] > staging[1] >= 2
    assert staging[2] != production[2]
    assert (staging[3], production[3]) == ("inventory-staging", "inventory")


def test_blue_green_waits_for_analysis_and_a_human(tools: Path) -> None:
    docs = _render(tools, "production-bluegreen")
    rollout = find(docs, "Rollout", "inventory-web")
    blue_green = rollout["spec"]["strategy"]["blueGreen"]
    assert blue_green["autoPromotionEnabled"] is False
    find(docs, "Service", blue_green["activeService"])
    find(docs, "Service", blue_green["previewService"])
    assert rollout["spec"]["workloadRef"]["name"] == "inventory-web"
    find(docs, "Deployment", "inventory-web")
    assert find(docs, "HorizontalPodAutoscaler", "inventory-web")["spec"]["scaleTargetRef"]["kind"] == "Rollout"
    analysis = blue_green["prePromotionAnalysis"]
    template = find(docs, "AnalysisTemplate", analysis["templates"][0]["templateName"])
    args = {a["name"]: a["value"] for a in analysis["args"]}
    assert args["service"] == blue_green["previewService"]
    query = template["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    assert 'status=~"5.."' in query and 'service="{{args.service}}"' in query


def test_analysis_queries_a_metric_the_app_exports() -> None:
    analysis = yaml.safe_load((ROOT / "ops/k8s/overlays/production-bluegreen/analysistemplate.yaml").read_text())
    query = analysis["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    names = set(re.findall(r"\b([a-z_]+)\{", query))
    app = create_app(Config(SQLALCHEMY_DATABASE_URI="sqlite://", TESTING=True, INVENTORY_METRICS_TOKEN="t" * 32))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/no-such-page").status_code == 404
    exposition = client.get("/metrics", headers={"Authorization": "Bearer " + "t" * 32}).get_data(as_text=True)
    assert names and all(re.search(rf"^{name}\{{.*status=", exposition, re.M) for name in names), names


def test_argocd_syncs_staging_itself_and_production_by_hand(tools: Path) -> None:
    done = subprocess.run(
        [str(tools / "kubectl"), "kustomize", str(ROOT / "ops/argocd")], capture_output=True, text=True, check=True
    )
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    staging = find(docs, "Application", "inventory-staging")["spec"]
    production = find(docs, "Application", "inventory-production")["spec"]
    assert staging["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "automated" not in production.get("syncPolicy", {})
    project = find(docs, "AppProject", "inventory")["spec"]
    for app in (staging, production):
        assert app["project"] == "inventory"
        assert (ROOT / app["source"]["path"] / "kustomization.yaml").is_file()
        assert {"server": app["destination"]["server"], "namespace": app["destination"]["namespace"]} in project[
            "destinations"
        ]


def test_crd_schemas_reject_a_misspelt_field(tools: Path, tmp_path: Path) -> None:
    docs = _render(tools, "production-bluegreen")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump_all(docs))
    validate = [str(tools / "python"), str(ROOT / "ops/schemas/validate.py")]
    assert subprocess.run([*validate, str(good)], capture_output=True, check=False).returncode == 0
    broken = copy.deepcopy(docs)
    find(broken, "Rollout", "inventory-web")["spec"]["strategy"]["blueGreen"]["autoPromotionEnable"] = True
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all(broken))
    done = subprocess.run([*validate, str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "autoPromotionEnable" in done.stderr


def test_chart_schema_refuses_latest(tools: Path, tmp_path: Path) -> None:
    values = tmp_path / "latest.yaml"
    values.write_text("image:\n  tag: latest\n")
    command = [str(tools / "python"), str(ROOT / "ops/helm/render.py"), "--values", str(values)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "/image/tag" in done.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


def test_the_ingress_passes_bodies_as_large_as_the_app_reads(rendered: list[Doc]) -> None:
    ingress = find(rendered, "Ingress", "inventory-web")
    size = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    number, unit = re.fullmatch(r"([0-9]+)([kmg]?)", size).groups()  # type: ignore[union-attr]
    allowed = int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]
    assert allowed >= Config().MAX_CONTENT_LENGTH
