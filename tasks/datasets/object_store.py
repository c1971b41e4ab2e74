"""Object storage (s3://, gs://, az://) through obstore: the files a path or glob names, and each
file streamed to local disk. Credentials come as obstore config from ``SourceAccess`` (a Prefect
block) or, by default, from the environment (AWS_*, GOOGLE_*, AZURE_* variables)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import obstore
from obstore.store import from_url

from tasks.config.source_schema import GLOB_CHARS


@dataclass(frozen=True)
class RemoteFile:
    url: str
    modified: datetime


def _split(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b.csv`` -> (``s3://bucket``, ``a/b.csv``); Azure's container is part of the root."""
    scheme, rest = url.split("://", 1)
    parts = rest.split("/", 2 if scheme == "az" else 1)
    keep = 2 if scheme == "az" else 1
    return f"{scheme}://{'/'.join(parts[:keep])}", "/".join(parts[keep:])


def _store(root: str, options: dict[str, str]):
    # obstore types the config per store (S3Config, GCSConfig, AzureConfig); these are that store's keys.
    return from_url(root, config=options or None)  # type: ignore[arg-type]


def matching(url: str, options: dict[str, str]) -> list[RemoteFile]:
    """The objects a URL names: itself, or every object matching its glob (fnmatch: '*' spans '/')."""
    root, key = _split(url)
    store = _store(root, options)
    if not any(c in key for c in GLOB_CHARS):
        meta = obstore.head(store, key)
        return [RemoteFile(url, meta["last_modified"])]
    prefix = key[:min(key.index(c) for c in GLOB_CHARS if c in key)].rsplit("/", 1)[0]
    found = []
    for batch in obstore.list(store, prefix=prefix or None):
        for meta in batch:
            if fnmatch.fnmatchcase(meta["path"], key):
                found.append(RemoteFile(f"{root}/{meta['path']}", meta["last_modified"]))
    return sorted(found, key=lambda f: f.url)


def download(url: str, dest: Path, options: dict[str, str]) -> None:
    root, key = _split(url)
    response = obstore.get(_store(root, options), key)
    with dest.open("wb") as out:
        for chunk in response.stream(min_chunk_size=1 << 20):
            out.write(chunk)
