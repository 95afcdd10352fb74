"""The app members see the repository read-only, as the shipped pods do (readOnlyRootFilesystem):
whatever the code wrote under it (uploads in instance/, say) would fail here as in Kubernetes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cluster.conftest import ROOT, Cluster


def _mount_of(pid: int, path: Path) -> list[str]:
    """The fields of the mount `pid` sees at exactly `path` (the last one mounted there wins)."""
    found = [line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]
    at_path = [fields for fields in found if fields[4] == str(path)]
    assert at_path, f"no mount at {path} for pid {pid}"
    return at_path[-1]


def test_every_app_member_sees_the_code_read_only_and_the_test_process_does_not(cluster: Cluster) -> None:
    pids = json.loads((cluster.directory / "state.json").read_text())["pids"]
    members = [name for name in pids if name.startswith("app")] + ["jobs", "notifier"]
    assert len(members) >= 4  # two apps at least, the job worker, the notification worker
    for name in members:
        options = _mount_of(pids[name], ROOT)[5].split(",")
        assert "ro" in options, (name, options)
    # The namespace is the member's own: the machine (and this test) still writes the checkout.
    assert not any(
        fields[4] == str(ROOT)
        for fields in (line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines())
    )
