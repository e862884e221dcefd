"""Artifact storage: one abstraction over local disk and object stores (UPath paths).

Layout: ``{root}/movies/{movie}/{asset}/{partition}/{version}.{ext}``. The version is the content
hash, so a new version never overwrites an old one and every earlier timeline stays playable; writing
the same content twice is a no-op. Local writes go to a temporary file in the same folder and are
renamed into place, so a crash never leaves a half-written file at a final path.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import dagster as dg
from pydantic import Field
from upath import UPath


def default_root() -> str:
    home = os.environ.get("DAGSTER_HOME") or str(Path(__file__).resolve().parent.parent / "dagster_home")
    return str(Path(home) / "artifacts")


class ArtifactStore(dg.ConfigurableResource):
    """Where artifacts live. ``root`` is a local folder or a URL (``s3://bucket/prefix``)."""

    root: str = Field(default="", description="Local folder or URL; empty means $DAGSTER_HOME/artifacts.")

    def _root(self) -> UPath:
        return UPath(self.root or default_root())

    def path(self, relpath: str) -> UPath:
        return self._root() / relpath

    def uri(self, relpath: str) -> str:
        p = self.path(relpath)
        return p.as_uri() if p.protocol in ("", "file", "local") else str(p)

    def artifact_relpath(self, movie: str, asset: str, partition: str | None, version: str, ext: str) -> str:
        return f"movies/{movie}/{asset}/{partition or '_'}/{version[:16]}.{ext}"

    def write(self, relpath: str, data: bytes, *, immutable: bool = False) -> str:
        """Write bytes atomically and return the URI. ``immutable``: the path names its content (a
        content-hash version), so an existing file is already right and is left as it is."""
        target = self.path(relpath)
        if immutable and target.exists():
            return self.uri(relpath)
        if target.protocol in ("", "file", "local"):
            final = Path(target.path)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
        else:
            # Object stores make a single PUT visible all at once, never partially.
            target.write_bytes(data)
        return self.uri(relpath)

    def write_text(self, relpath: str, text: str) -> str:
        return self.write(relpath, text.encode("utf-8"))

    def read(self, uri_or_relpath: str) -> bytes:
        """Read an artifact by URI or relative path; FileNotFoundError names what is missing."""
        p = UPath(uri_or_relpath) if "://" in uri_or_relpath else self.path(uri_or_relpath)
        try:
            return p.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"artifact not found: {uri_or_relpath}") from None

    def list(self, relfolder: str) -> list[str]:
        """Names of the files in a folder, sorted ([] when it does not exist)."""
        folder = self.path(relfolder)
        try:
            return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def exists(self, relpath: str) -> bool:
        return self.path(relpath).exists()

    def local_path(self, uri: str) -> Path | None:
        """The file behind a local URI, for tools that want a path."""
        p = UPath(uri)
        return Path(p.path) if p.protocol in ("", "file", "local") else None
