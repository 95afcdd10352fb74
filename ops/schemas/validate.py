"""Validate the custom resources in rendered manifests against the JSON Schemas beside this file.

`kubernetes-validate --strict` checks built-in kinds but passes unknown kinds with a warning, so this
script is the other half: every document whose kind is not built into Kubernetes must match one of
these schemas, and a kind that neither tool validates fails the check.

    python ops/schemas/validate.py rendered.yaml [more.yaml ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

HERE = Path(__file__).resolve().parent
SCHEMAS = {
    ("argoproj.io/v1alpha1", "Application"): "argocd-application",
    ("argoproj.io/v1alpha1", "AppProject"): "argocd-appproject",
    ("argoproj.io/v1alpha1", "Rollout"): "rollouts-rollout",
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): "rollouts-analysistemplate",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring-servicemonitor",
    ("external-secrets.io/v1", "ExternalSecret"): "external-secrets-externalsecret",
    ("k8s.mariadb.com/v1alpha1", "MariaDB"): "mariadb-operator-mariadb",
    ("redis.redis.opstreelabs.in/v1beta2", "Redis"): "redis-operator-redis",
}
# Built-in kinds we ship, each one that kubernetes-validate has a schema for. A built-in kind missing
# here fails: kubernetes-validate would only have warned about a misspelt one.
BUILTIN_KINDS = {
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress"),
}


def is_builtin(api_version: str) -> bool:
    """Core groups have no dot (v1, apps/v1, batch/v1 …); the rest of Kubernetes ends in .k8s.io."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def validators() -> dict[tuple[str, str], Draft202012Validator]:
    loaded = {}
    for key, name in SCHEMAS.items():
        schema = json.loads((HERE / f"{name}.schema.json").read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        loaded[key] = Draft202012Validator(schema)
    return loaded


def problems(documents: list[dict], source: str) -> list[str]:
    found = []
    checkers = validators()
    for doc in documents:
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        name = (doc.get("metadata") or {}).get("name", "?")
        where = f"{source}: {kind}/{name}"
        if is_builtin(api_version):
            if (api_version, kind) not in BUILTIN_KINDS:
                found.append(f"{where}: built-in {api_version} {kind} is not in BUILTIN_KINDS (validated by nothing)")
            continue
        checker = checkers.get((api_version, kind))
        if checker is None:
            found.append(f"{where}: no schema validates {api_version} {kind}")
            continue
        for error in sorted(checker.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(part) for part in error.absolute_path) or "(root)"
            found.append(f"{where}: {path}: {error.message}")
    return found


def main(paths: list[str]) -> int:
    failures, count = [], 0
    for path in paths:
        documents = [doc for doc in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if doc]
        count += len(documents)
        failures += problems(documents, path)
    for line in failures:
        print(line, file=sys.stderr)
    print(f"custom resources: {count} document(s) read, {len(failures)} problem(s)")
    return 1 if failures or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
