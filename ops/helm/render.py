"""Lint and render ops/helm/inventory with helm-python-sdk (Helm's own library; no helm binary here).

    python ops/helm/render.py [--values FILE] [--release NAME] [--namespace NS] > rendered.yaml

Lint runs first with --strict semantics (warnings fail) against the same values; the manifests go to
stdout in template order, NOTES.txt left out. The release workflow runs the real helm CLI as well.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parent / "inventory"
KUBE_VERSION = "v1.30.0"


def lint_messages(values: dict | None) -> list[str]:
    report = helm.lint(str(CHART), values, strict=True, kube_version=KUBE_VERSION)
    messages = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]  # 2 warning, 3 error
    found = [f"{m.get('path', '')}: {m.get('error', '')}" for m in messages]
    return found + [str(error) for error in report.get("errors", [])]


def render(values: dict | None, *, release: str, namespace: str) -> str:
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)
        manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
    rendered = sorted(manifests.items())
    documents = [text.strip() for path, text in rendered if not path.endswith("NOTES.txt") and text.strip()]
    return "\n---\n".join(documents) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=Path, help="values file layered over values.yaml")
    parser.add_argument("--release", default="inventory")
    parser.add_argument("--namespace", default="inventory")
    args = parser.parse_args()
    values = yaml.safe_load(args.values.read_text(encoding="utf-8")) if args.values else None
    problems = lint_messages(values)
    if problems:
        print("helm lint --strict failed:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    sys.stdout.write(render(values, release=args.release, namespace=args.namespace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
