"""Where backups live: a directory, or a prefix in S3-compatible object storage.

A backup is a folder (or key prefix) named `inventory-YYYYmmddTHHMMSSZ` holding `manifest.json`
and the compressed payload it describes. The manifest is written last, so a backup whose upload
broke off has no manifest and is never listed, verified or restored.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from app.services.errors import BackupInvalid

MANIFEST = "manifest.json"
NAME_PREFIX = "inventory-"


class Store(Protocol):
    def url(self, name: str) -> str: ...
    def names(self) -> list[str]: ...
    def upload(self, name: str, folder: Path) -> None: ...
    def download(self, name: str, folder: Path) -> None: ...
    def read_manifest(self, name: str) -> dict[str, Any]: ...
    def delete(self, name: str) -> None: ...


def _parse_manifest(text: bytes, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupInvalid(f"{where}: the manifest is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or "payload" not in manifest:
        raise BackupInvalid(f"{where}: the manifest does not describe a payload")
    return manifest


@dataclass(frozen=True)
class DirectoryStore:
    root: Path

    def url(self, name: str) -> str:
        return str(self.root / name)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.name.startswith(NAME_PREFIX) and (p / MANIFEST).is_file()
        )

    def upload(self, name: str, folder: Path) -> None:
        target = self.root / name
        target.mkdir(parents=True, exist_ok=False)
        for path in sorted(folder.iterdir(), key=lambda p: p.name == MANIFEST):
            shutil.copyfile(path, target / path.name)

    def download(self, name: str, folder: Path) -> None:
        source = self.root / name
        if not (source / MANIFEST).is_file():
            raise BackupInvalid(f"{source}: no backup there (no {MANIFEST})")
        for path in source.iterdir():
            shutil.copyfile(path, folder / path.name)

    def read_manifest(self, name: str) -> dict[str, Any]:
        path = self.root / name / MANIFEST
        try:
            return _parse_manifest(path.read_bytes(), str(self.root / name))
        except FileNotFoundError as exc:
            raise BackupInvalid(f"{self.root / name}: no backup there (no {MANIFEST})") from exc

    def delete(self, name: str) -> None:
        shutil.rmtree(self.root / name)


@dataclass(frozen=True)
class S3Store:
    bucket: str
    prefix: str
    endpoint_url: str

    def _client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url or None)

    def _key(self, name: str, file: str = "") -> str:
        return "/".join(part for part in (self.prefix, name, file) if part)

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def names(self) -> list[str]:
        found = []
        paginator = self._client().get_paginator("list_objects_v2")
        base = self._key("") + "/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base + NAME_PREFIX):
            for entry in page.get("Contents", []):
                rest = entry["Key"][len(base) :]
                name, _, file = rest.partition("/")
                if file == MANIFEST:
                    found.append(name)
        return sorted(found)

    def upload(self, name: str, folder: Path) -> None:
        client = self._client()
        for path in sorted(folder.iterdir(), key=lambda p: p.name == MANIFEST):
            client.upload_file(str(path), self.bucket, self._key(name, path.name))

    def download(self, name: str, folder: Path) -> None:
        client = self._client()
        manifest = self.read_manifest(name)
        (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        client.download_file(
            self.bucket, self._key(name, manifest["payload"]["file"]), str(folder / manifest["payload"]["file"])
        )

    def read_manifest(self, name: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            body = self._client().get_object(Bucket=self.bucket, Key=self._key(name, MANIFEST))["Body"].read()
        except ClientError as exc:
            raise BackupInvalid(f"{self.url(name)}: no backup there ({exc.response['Error']['Code']})") from exc
        return _parse_manifest(body, self.url(name))

    def delete(self, name: str) -> None:
        client = self._client()
        keys = [
            {"Key": e["Key"]}
            for e in client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(name) + "/").get("Contents", [])
        ]
        if keys:
            client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


def open_store(target: str, *, s3_endpoint_url: str = "") -> Store:
    """The store a target names: `s3://bucket/prefix` or a directory path."""
    if target.startswith("s3://"):
        parsed = urlparse(target)
        if not parsed.netloc:
            raise BackupInvalid(f"{target}: an S3 target needs a bucket (s3://bucket/prefix)")
        return S3Store(bucket=parsed.netloc, prefix=parsed.path.strip("/"), endpoint_url=s3_endpoint_url)
    if "://" in target:
        raise BackupInvalid(f"{target}: a target is a directory or an s3:// URL")
    return DirectoryStore(Path(target))


def locate(backup: str, default_target: str, *, s3_endpoint_url: str = "") -> tuple[Store, str]:
    """The store and name of BACKUP: a bare name in the configured target, or a full path / URL."""
    if "/" not in backup:
        return open_store(default_target, s3_endpoint_url=s3_endpoint_url), backup
    parent, _, name = backup.rstrip("/").rpartition("/")
    if parent.endswith(":/"):  # "s3://bucket/name": the name sits at the bucket's root
        parent += "/"
    return open_store(parent or "/", s3_endpoint_url=s3_endpoint_url), name
