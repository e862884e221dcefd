"""Artifact storage: one resource over local disk and S3-compatible object storage.

Layout (both backends): ``{root}/movies/{movie}/{asset}/{partition}/{version}.{ext}``. The version is
the content hash, so a new version never overwrites an old one and every earlier timeline stays
playable; writing the same content twice is a no-op.

* Local disk: a write goes to a temporary file in the same folder, is fsynced and renamed into place,
  so a crash never leaves a half-written file at a final path.
* S3 (``root = s3://bucket/prefix``): one PUT per object through a boto3 client made by dagster-aws;
  an object store makes a PUT visible all at once or not at all. Works with AWS and any S3-compatible
  store (``AWS_ENDPOINT_URL``). Credentials come from the environment (``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` as Dagster ``EnvVar``\\ s, or the standard AWS chain: profile, instance
  role); they are never stored or logged.

What the product stores about an artifact (its record, a timeline's ``src``, the build cache, a
revision's manifest) is its path relative to the root (``movies/m/script/_/0123456789abcdef.json``), a
relative URI reference: a copied or moved home, or objects copied to another bucket or prefix, keep
working, and a data version never depends on where the home is. :meth:`ArtifactStore.uri` resolves a
reference against the current root (``file://...`` or ``s3://bucket/key``); :meth:`ArtifactStore.link`
turns it into a URL a render host can fetch: the file URI on disk, a presigned GET with a configurable
lifetime, or a public URL when the bucket is public.

Homes made before stored absolute URIs. Every method that takes a reference also takes such a URI and
re-roots it: an artifact's URI from another root (``.../movies/<movie>/<asset>/<partition>/<file>``) names
the same file under this root, unless only the other root still has it (storage was pointed at another
folder or prefix and the old one kept): then the old URI is used as it is.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from resources.runtime.disk import writing
from resources.runtime.paths import dagster_home

STORAGE_ENV = "MOVIEGEN_STORAGE"  # a folder or s3://bucket/prefix


def default_root() -> str:
    configured = os.environ.get(STORAGE_ENV, "").strip()
    return configured or str(dagster_home() / "artifacts")


# An artifact's path under the root: movies/<movie>/<asset>/<partition>/<version16>.<ext> (artifact_relpath).
_ARTIFACT_PARTS = 5


def _artifact_tail(parts: list[str]) -> str | None:
    """The artifact path that ends an absolute path or key from another root (None: not an artifact's)."""
    tail = [p for p in parts if p][-_ARTIFACT_PARTS:]
    return "/".join(tail) if len(tail) == _ARTIFACT_PARTS and tail[0] == "movies" else None


class StorageError(Exception):
    """Storage is misconfigured or unreachable; the message says what to fix."""

    category = "storage"  # resources.providers.base.ErrorCategory.storage (categorize honours it)


# What a folder that cannot hold the artifacts raises on disk: a file in the way (MOVIEGEN_STORAGE names a
# file), a folder where a file goes, no permission, a read-only file system. Not a full disk or memory
# (the machine's) and not a missing file (the caller's to handle).
_STORAGE_ERRNOS = frozenset({errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EROFS})


@contextlib.contextmanager
def _storage_faults() -> Iterator[None]:
    """Mark such an error as the storage's (``category``, as StorageError has), keeping its type: callers
    that catch OSError still do, and categorize() reports it as a storage failure, not a local one."""
    try:
        yield
    except OSError as e:
        if e.errno in _STORAGE_ERRNOS:
            e.category = StorageError.category  # type: ignore[attr-defined]
        raise


@dataclass(frozen=True)
class Entry:
    """One name in a folder as listed, nothing followed or read: ``kind`` is "file", "link" (a symbolic
    link, whatever it points to), "folder" or "other" (a pipe, socket or device); always "file" on S3.
    ``fingerprint`` is the one ``fingerprints`` gives for a file."""

    fingerprint: str
    size: int
    kind: str


class _Local:
    def __init__(self, root: str):
        self.root = Path(unquote(root.removeprefix("file://"))).expanduser().absolute()

    def uri(self, rel: str) -> str:
        return (self.root / rel).as_uri()

    def path(self, rel: str) -> Path | None:
        return self.root / rel

    def rel_of(self, uri: str) -> str | None:
        if not uri.startswith("file://"):
            return None
        try:
            return str(Path(unquote(urlparse(uri).path)).relative_to(self.root))
        except ValueError:
            return None

    def artifact_tail(self, uri: str) -> str | None:
        return _artifact_tail(unquote(urlparse(uri).path).split("/")) if uri.startswith("file://") else None

    def exists_uri(self, uri: str) -> bool:
        return Path(unquote(urlparse(uri).path)).exists()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def size(self, rel: str) -> int | None:
        try:
            st = (self.root / rel).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size

    def sizes(self, rel: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for folder, _, files in os.walk(self.root / rel):
            for name in files:
                path = Path(folder) / name
                try:
                    out[str(path.relative_to(self.root))] = path.stat().st_size
                except FileNotFoundError:
                    continue
        return out

    def put(self, rel: str, data: bytes) -> None:
        final = self.root / rel
        with _storage_faults(), writing(final):
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

    def get(self, rel: str) -> bytes:
        with _storage_faults():
            return (self.root / rel).read_bytes()

    def delete(self, rel: str) -> None:
        (self.root / rel).unlink(missing_ok=True)

    def delete_folder(self, rel: str) -> int:
        folder = self.root / rel
        if folder.is_symlink() or not folder.is_dir():
            return 0
        count = sum(len(files) for _, _, files in os.walk(folder))
        shutil.rmtree(folder)  # rmtree removes a link inside, never what it points to
        return count

    def get_uri(self, uri: str) -> bytes:
        return Path(unquote(urlparse(uri).path)).read_bytes()

    def names(self, rel: str) -> list[str]:
        return sorted(self.fingerprints(rel))

    def fingerprints(self, rel: str) -> dict[str, str]:
        try:
            with _storage_faults():
                entries = [p for p in (self.root / rel).iterdir() if not p.name.startswith(".")]
        except FileNotFoundError:
            return {}
        out = {}
        for p in entries:
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if p.is_file():
                out[p.name] = f"{st.st_size}-{st.st_mtime_ns}"
        return out

    def entries(self, rel: str) -> dict[str, Entry]:
        try:
            scan = list(os.scandir(self.root / rel))
        except (FileNotFoundError, NotADirectoryError):
            return {}
        out = {}
        for e in scan:
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            mode = st.st_mode
            kind = ("file" if stat.S_ISREG(mode) else "link" if stat.S_ISLNK(mode)
                    else "folder" if stat.S_ISDIR(mode) else "other")
            fingerprint = f"{st.st_size}-{st.st_mtime_ns}" + ("" if kind == "file" else f"-{kind}")
            out[e.name] = Entry(fingerprint, st.st_size, kind)
        return out

    def get_limited(self, rel: str, limit: int) -> bytes:
        # O_NOFOLLOW: a link put in place after the listing is refused too (ELOOP); O_NONBLOCK: a pipe
        # does not block the open. Then only a regular file is read, and at most limit + 1 bytes of it.
        fd = os.open(self.root / rel, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{rel} is not a regular file")
            return f.read(limit + 1)

    def link(self, uri: str) -> str:
        return uri


class _S3:
    def __init__(self, root: str, client: Any, lifetime_s: int, public_url: str):
        parsed = urlparse(root)
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        if not self.bucket:
            raise StorageError(f"storage root {root!r}: expected s3://BUCKET[/PREFIX]")
        self.client, self.lifetime_s, self.public_url = client, lifetime_s, public_url.rstrip("/")

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def uri(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self.key(rel)}"

    def path(self, rel: str) -> Path | None:
        return None

    def rel_of(self, uri: str) -> str | None:
        start = f"s3://{self.bucket}/" + (f"{self.prefix}/" if self.prefix else "")
        return uri[len(start):] if uri.startswith(start) else None

    def artifact_tail(self, uri: str) -> str | None:
        return _artifact_tail(urlparse(uri).path.split("/")) if uri.startswith("s3://") else None

    def exists_uri(self, uri: str) -> bool:
        parsed = urlparse(uri)
        if parsed.netloc != self.bucket:
            return False  # another bucket is never read (get_uri refuses it)
        try:
            self._call(uri, self.client.head_object, Bucket=self.bucket, Key=parsed.path.lstrip("/"))
        except FileNotFoundError:
            return False
        return True

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - only when storage is S3

        try:
            return fn(**kwargs)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise FileNotFoundError(what) from None
            if code == "NoSuchBucket":
                raise StorageError(f"bucket {self.bucket!r} does not exist (storage root s3://{self.bucket}/{self.prefix}); "
                                   "create it or set MOVIEGEN_STORAGE to an existing bucket") from None
            if code in ("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "403"):
                raise StorageError(f"S3 refused {what} ({code}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
                                   f"and the bucket policy of {self.bucket!r}") from None
            raise StorageError(f"S3 error on {what}: {code or e}") from None
        except BotoCoreError as e:
            raise StorageError(f"cannot reach S3 for {what}: {e}") from None

    def exists(self, rel: str) -> bool:
        return self.size(rel) is not None

    def size(self, rel: str) -> int | None:
        try:
            return int(self._call(rel, self.client.head_object, Bucket=self.bucket, Key=self.key(rel))["ContentLength"])
        except FileNotFoundError:
            return None

    def sizes(self, rel: str) -> dict[str, int]:
        prefix = self.key(rel).rstrip("/") + "/"
        start = f"{self.prefix}/" if self.prefix else ""
        out: dict[str, int] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in self._call(rel, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix))):
            for o in page.get("Contents", []):
                out[o["Key"][len(start):]] = int(o.get("Size", 0))
        return out

    def put(self, rel: str, data: bytes) -> None:
        self._call(rel, self.client.put_object, Bucket=self.bucket, Key=self.key(rel), Body=data,
                   ContentType=_content_type(rel))

    def delete(self, rel: str) -> None:
        self._call(rel, self.client.delete_object, Bucket=self.bucket, Key=self.key(rel))

    def delete_folder(self, rel: str) -> int:
        prefix = self.key(rel).rstrip("/") + "/"
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in self._call(rel, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix))):
            keys += [o["Key"] for o in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            self._call(rel, self.client.delete_objects, Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def _get_key(self, key: str, what: str) -> bytes:
        return self._call(what, self.client.get_object, Bucket=self.bucket, Key=key)["Body"].read()

    def get(self, rel: str) -> bytes:
        return self._get_key(self.key(rel), rel)

    def get_uri(self, uri: str) -> bytes:
        parsed = urlparse(uri)
        if parsed.netloc != self.bucket:
            raise StorageError(f"{uri} is outside the configured bucket {self.bucket!r}")
        return self._get_key(parsed.path.lstrip("/"), uri)

    def names(self, rel: str) -> list[str]:
        return sorted(self.fingerprints(rel))

    def fingerprints(self, rel: str) -> dict[str, str]:
        return {name: e.fingerprint for name, e in self.entries(rel).items() if not name.startswith(".")}

    def entries(self, rel: str) -> dict[str, Entry]:
        prefix = self.key(rel).rstrip("/") + "/" if rel else (f"{self.prefix}/" if self.prefix else "")
        out: dict[str, Entry] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in self._call(rel, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"))):
            for o in page.get("Contents", []):
                name = o["Key"][len(prefix):]
                if name:
                    out[name] = Entry(str(o.get("ETag", "")).strip('"'), int(o.get("Size", 0)), "file")
        return out

    def get_limited(self, rel: str, limit: int) -> bytes:
        body = self._call(rel, self.client.get_object, Bucket=self.bucket, Key=self.key(rel))["Body"]
        try:
            return body.read(limit + 1)
        finally:
            body.close()

    def link(self, uri: str) -> str:
        parsed = urlparse(uri)
        key = parsed.path.lstrip("/")
        if self.public_url:
            return f"{self.public_url}/{quote(key)}"
        return self.client.generate_presigned_url("get_object", Params={"Bucket": parsed.netloc, "Key": key},
                                                  ExpiresIn=self.lifetime_s)


_TYPES = {"json": "application/json", "png": "image/png", "jpg": "image/jpeg", "mp3": "audio/mpeg", "m4a": "audio/mp4", "mp4": "video/mp4",
          "txt": "text/plain; charset=utf-8", "yaml": "application/yaml"}


def _content_type(rel: str) -> str:
    return _TYPES.get(rel.rsplit(".", 1)[-1], "application/octet-stream")


@functools.lru_cache(maxsize=8)
def _s3_client(endpoint_url: str, region: str, key_id: str, secret: str) -> Any:
    """A boto3 S3 client with the retry configuration dagster-aws uses (botocore's standard mode, 5
    attempts: retries on throttling, 5xx and connection errors), SigV4 and path-style addressing, which
    work on AWS and on every S3-compatible store. boto3 loads only when S3 is used (start-up time)."""
    import boto3  # noqa: PLC0415 - loaded only when storage is S3
    from botocore.config import Config  # noqa: PLC0415

    config = Config(retries={"max_attempts": 5, "mode": "standard"}, signature_version="s3v4",
                    s3={"addressing_style": "path"})
    session = boto3.session.Session(aws_access_key_id=key_id or None, aws_secret_access_key=secret or None,
                                    region_name=region)
    return session.client("s3", endpoint_url=endpoint_url or None, config=config)


@dataclass(frozen=True)
class ArtifactStore:
    """Where artifacts live: a local folder, or ``s3://bucket/prefix`` (from MOVIEGEN_STORAGE). Empty
    fields fall back to the environment (see ``ArtifactStoreResource`` for each one's meaning);
    credentials are kept out of the repr."""

    root: str = ""
    endpoint_url: str = ""
    region_name: str = ""
    aws_access_key_id: str = field(default="", repr=False)
    aws_secret_access_key: str = field(default="", repr=False)
    link_seconds: int = 0
    public_url: str = ""

    def _backend(self) -> _Local | _S3:
        root = self.root or default_root()
        if not root.startswith("s3://"):
            if "://" in root and not root.startswith("file://"):
                raise StorageError(f"storage root {root!r}: expected a folder, file://... or s3://BUCKET[/PREFIX]")
            return _Local(root)
        region = self.region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        lifetime = self.link_seconds or int(os.environ.get("MOVIEGEN_LINK_SECONDS") or 86400)
        env = os.environ.get
        client = _s3_client(self.endpoint_url or env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL") or "", region,
                            self.aws_access_key_id or env("AWS_ACCESS_KEY_ID", ""),
                            self.aws_secret_access_key or env("AWS_SECRET_ACCESS_KEY", ""))
        return _S3(root, client, lifetime, self.public_url or os.environ.get("MOVIEGEN_PUBLIC_URL", ""))

    @staticmethod
    def _rel(backend: _Local | _S3, ref: str) -> str | None:
        """The path under the root of a reference: a relative path as it is, a URI of this store, or an
        artifact's URI from another root re-rooted here (see the module docstring); None: a URI only its
        own store can place."""
        if "://" not in ref:
            return ref
        rel = backend.rel_of(ref)
        if rel is not None:
            return rel
        tail = backend.artifact_tail(ref)
        if tail is None or (not backend.exists(tail) and backend.exists_uri(ref)):
            return None
        return tail

    def uri(self, ref: str) -> str:
        """The absolute URI under the current root of a reference: a relative path, or a URI (re-rooted
        when it is an artifact's from another root; a URI of another store stays as it is)."""
        backend = self._backend()
        rel = self._rel(backend, ref)
        return backend.uri(rel) if rel is not None else ref

    def ref(self, uri_or_relpath: str) -> str:
        """What to store about a file: its path relative to the root, also for a URI of this store or one
        re-rooted here (a URI of another store stays as it is)."""
        rel = self._rel(self._backend(), uri_or_relpath)
        return rel if rel is not None else uri_or_relpath

    def artifact_relpath(self, movie: str, asset: str, partition: str | None, version: str, ext: str) -> str:
        return f"movies/{movie}/{asset}/{partition or '_'}/{version[:16]}.{ext}"

    def write(self, relpath: str, data: bytes, *, immutable: bool = False) -> str:
        """Write bytes atomically and return the URI. ``immutable``: the path names its content (a
        content-hash version), so an existing object of the same size is already right and is left as
        it is (one of another size is damaged and is replaced)."""
        backend = self._backend()
        if not (immutable and backend.size(relpath) == len(data)):
            backend.put(relpath, data)
        return backend.uri(relpath)

    def write_text(self, relpath: str, text: str) -> str:
        return self.write(relpath, text.encode("utf-8"))

    def read(self, ref: str) -> bytes:
        """Read a file by relative path or URI; FileNotFoundError names what is missing (where it was
        looked for: the current root's URI of a re-rooted one)."""
        backend = self._backend()
        rel = self._rel(backend, ref)
        try:
            return backend.get(rel) if rel is not None else backend.get_uri(ref)
        except FileNotFoundError:
            raise FileNotFoundError(f"artifact not found: {ref if rel is None or '://' not in ref else backend.uri(rel)}") from None

    def list(self, relfolder: str) -> list[str]:
        """Names of the files in a folder, sorted ([] when it does not exist)."""
        return self._backend().names(relfolder)

    def fingerprints(self, relfolder: str) -> dict[str, str]:
        """Name -> a fingerprint that changes when the file is replaced (size+mtime on disk, ETag on
        S3), for the files of a folder."""
        return self._backend().fingerprints(relfolder)

    def entries(self, relfolder: str) -> dict[str, Entry]:
        """Every name in a folder (hidden ones too) with its fingerprint, size and kind, from one listing:
        nothing is followed or read, so a caller can refuse links, folders and large files before
        reading anything (S3 has no links: every object is a "file")."""
        return self._backend().entries(relfolder)

    def read_limited(self, relpath: str, limit: int) -> bytes:
        """At most ``limit`` + 1 bytes of a file (more than ``limit``: it is larger). On disk only a
        regular file is read and a symbolic link is never followed (OSError)."""
        try:
            return self._backend().get_limited(relpath, limit)
        except FileNotFoundError:
            raise FileNotFoundError(f"artifact not found: {relpath}") from None

    def exists(self, ref: str) -> bool:
        """Whether a file is there, by relative path or URI (a URI of another store counts as there: it
        cannot be checked from here)."""
        backend = self._backend()
        rel = self._rel(backend, ref)
        return backend.exists(rel) if rel is not None else True

    def size(self, ref: str) -> int | None:
        """The size in bytes of a file of this store, by relative path or URI (None: not there)."""
        backend = self._backend()
        rel = self._rel(backend, ref)
        return backend.size(rel) if rel is not None else None

    def sizes(self, relfolder: str) -> dict[str, int]:
        """Relative path -> size of every file under a folder, recursively, in one listing (one request
        per thousand objects on S3): how a build checks cheaply that its artifacts are all there."""
        return self._backend().sizes(relfolder)

    def rel_of(self, ref: str) -> str | None:
        """The path under the root of a relative path or URI (None: a URI of another store)."""
        return self._rel(self._backend(), ref)

    def delete(self, relpath: str) -> None:
        """Remove a file (inbox reports; artifacts only by ``moviegen prune``, never by a build). Missing is fine."""
        self._backend().delete(relpath)

    def delete_folder(self, relfolder: str) -> int:
        """Remove a folder and everything under it (on S3: every object under the prefix); returns how many
        files were removed. ``moviegen delete`` removes a whole movie at once (``prune`` removes single files)."""
        if not relfolder.strip("/") or ".." in relfolder.split("/"):
            raise ValueError(f"refusing to delete {relfolder!r}: not a folder under the artifact root")
        return self._backend().delete_folder(relfolder.strip("/"))

    def root_folder(self) -> str | None:
        """The local folder artifacts are kept in (None: the store is S3)."""
        backend = self._backend()
        return str(backend.root) if isinstance(backend, _Local) else None

    def link(self, ref: str) -> str:
        """A URL a render host can fetch for a file (relative path or URI): its file URI on disk; on S3 a
        presigned GET valid for ``link_seconds`` or, for a public bucket, ``public_url``/key."""
        backend = self._backend()
        rel = self._rel(backend, ref)
        return backend.link(backend.uri(rel) if rel is not None else ref)

    def local_path(self, ref: str) -> Path | None:
        """The file behind a relative path or URI on local storage, for tools that want a path (None on
        S3)."""
        backend = self._backend()
        rel = self._rel(backend, ref)
        if rel is not None:
            return backend.path(rel)
        return Path(unquote(urlparse(ref).path)) if ref.startswith("file://") else None
