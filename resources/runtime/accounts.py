"""Accounts of the hosted service: tenants, their budget caps, and their API tokens.

A token is ``mgt_<id>_<secret>``: the id finds its row, the secret is checked against the SHA-256 of the
secret stored there (the secret itself is never stored: 32 random bytes need no slow hash) with a
constant-time comparison. A token belongs to one tenant and has its own request rate. Tokens are made,
listed and revoked with ``moviegen token``; the plain token is shown once, when it is made.

A tenant's movies are registered as ``<tenant>--<id>`` (budget.TENANT_SEPARATOR): the tenant sees only
those, and ``<id>`` only. Its caps (per UTC day over all its movies, per movie) apply on top of the
instance's in every generation of its movies (builder/budget.py caps_for), whoever starts it.

Storage: SQLite at ``$DAGSTER_HOME/service/accounts.sqlite`` (``MOVIEGEN_ACCOUNTS``: another file), shared
by the processes of one machine (a service on several machines shares the home's volume, like the
instance's SQLite storage; docs/service.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from resources.runtime.budget import TENANT_SEPARATOR
from resources.runtime.paths import dagster_home

TENANT_RE = re.compile(r"^[a-z0-9]{1,20}$")
TOKEN_RE = re.compile(r"^mgt_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
DEFAULT_RATE_PER_MINUTE = 600

_SCHEMA = (
    """create table if not exists tenants (
        name text primary key,
        daily_usd real,
        movie_usd real,
        created_at real not null
    )""",
    """create table if not exists tokens (
        id text primary key,
        tenant text not null references tenants(name),
        label text not null,
        secret_sha256 text not null,
        rate_per_minute integer not null,
        created_at real not null,
        revoked_at real
    )""",
)


class AccountError(ValueError):
    """A bad tenant name, cap or token id; the message says what is allowed."""


@dataclass(frozen=True)
class Tenant:
    name: str
    daily_usd: float | None
    movie_usd: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Token:
    """A token as listed: never its secret."""

    id: str
    tenant: str
    label: str
    rate_per_minute: int
    created_at: float
    revoked_at: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_tenant(name: str) -> str:
    if not TENANT_RE.match(name or ""):
        raise AccountError(f"tenant {name[:40]!r}: allowed: 1-20 lowercase letters and digits")
    return name


def _cap(value: float | None, what: str) -> float | None:
    if value is not None and not 0 <= value < float("inf"):
        raise AccountError(f"{what}: {value!r}; allowed: an amount in USD of 0 or more")
    return value


class Accounts:
    """The accounts file; thread-safe (one connection behind a lock), safe across processes (SQLite)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.execute("pragma journal_mode=wal")
        for statement in _SCHEMA:
            self._conn.execute(statement)
        os.chmod(path, 0o600)  # hashes only, but nobody else's business

    def _run(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(query, params).fetchall()

    def set_tenant(self, name: str, *, daily_usd: float | None = None, movie_usd: float | None = None,
                   keep: bool = False) -> Tenant:
        """Create a tenant, or set its caps (None: no cap of its own). ``keep``: an existing tenant keeps its caps."""
        check_tenant(name)
        _cap(daily_usd, "daily cap")
        _cap(movie_usd, "per-movie cap")
        if keep:
            self._run("insert or ignore into tenants (name, daily_usd, movie_usd, created_at) values (?, ?, ?, ?)",
                      (name, daily_usd, movie_usd, time.time()))
        else:
            self._run("insert into tenants (name, daily_usd, movie_usd, created_at) values (?, ?, ?, ?) on conflict(name) "
                      "do update set daily_usd = excluded.daily_usd, movie_usd = excluded.movie_usd",
                      (name, daily_usd, movie_usd, time.time()))
        tenant = self.tenant(name)
        assert tenant is not None
        return tenant

    def tenant(self, name: str) -> Tenant | None:
        rows = self._run("select name, daily_usd, movie_usd from tenants where name = ?", (name,))
        return Tenant(*rows[0]) if rows else None

    def tenants(self) -> list[Tenant]:
        return [Tenant(*row) for row in self._run("select name, daily_usd, movie_usd from tenants order by name")]

    def create_token(self, tenant: str, label: str = "", rate_per_minute: int = DEFAULT_RATE_PER_MINUTE) -> tuple[Token, str]:
        """A new token of ``tenant`` (created without caps if new): the listing and the plain token, shown once."""
        if not 1 <= rate_per_minute <= 1_000_000:
            raise AccountError(f"rate: {rate_per_minute}; allowed: 1 to 1000000 requests per minute")
        self.set_tenant(tenant, keep=True)
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = time.time()
        self._run("insert into tokens (id, tenant, label, secret_sha256, rate_per_minute, created_at) values (?, ?, ?, ?, ?, ?)",
                  (token_id, tenant, label[:200], _digest(secret), rate_per_minute, now))
        return Token(token_id, tenant, label[:200], rate_per_minute, now, None), f"mgt_{token_id}_{secret}"

    def tokens(self, tenant: str | None = None) -> list[Token]:
        query = "select id, tenant, label, rate_per_minute, created_at, revoked_at from tokens"
        rows = self._run(query + (" where tenant = ?" if tenant else "") + " order by created_at", (tenant,) if tenant else ())
        return [Token(*row) for row in rows]

    def revoke(self, token_id: str) -> Token:
        """Revoke a token by its id (``mgt_<id>_...``, or the whole token); AccountError when there is none."""
        match = TOKEN_RE.match(token_id)
        token_id = match.group(1) if match else token_id
        self._run("update tokens set revoked_at = ? where id = ? and revoked_at is null", (time.time(), token_id))
        found = [t for t in self.tokens() if t.id == token_id]
        if not found:
            raise AccountError(f"no token with id {token_id[:40]!r} (see `moviegen token list`)")
        return found[0]

    def authenticate(self, token: str) -> Token | None:
        """The token's listing when it is valid and not revoked, else None (no hint which part was wrong)."""
        match = TOKEN_RE.match(token or "")
        rows = self._run("select id, tenant, label, rate_per_minute, created_at, revoked_at, secret_sha256 from tokens "
                         "where id = ?", (match.group(1),)) if match else []
        stored = rows[0][6] if rows else _digest("no such token")
        given = _digest(match.group(2) if match else token or "")
        if not hmac.compare_digest(given, stored) or not rows or rows[0][5] is not None:
            return None
        return Token(*rows[0][:6])


_opened: dict[str, Accounts] = {}
_opened_lock = threading.Lock()


def accounts_path() -> Path:
    configured = os.environ.get("MOVIEGEN_ACCOUNTS", "").strip()
    return Path(configured) if configured else dagster_home() / "service" / "accounts.sqlite"


def open_accounts(create: bool = True) -> Accounts | None:
    """The accounts of this home (one per process and file); None when there is no file and not ``create``."""
    path = accounts_path()
    with _opened_lock:
        if str(path) not in _opened:
            if not create and not path.exists():
                return None
            _opened[str(path)] = Accounts(path)
        return _opened[str(path)]


def tenant_of(movie: str) -> str | None:
    """The tenant a movie id belongs to (``acme--civil-war``: ``acme``), or None (a movie made outside the service)."""
    head, sep, _ = movie.partition(TENANT_SEPARATOR)
    return head if sep and TENANT_RE.match(head) else None


def tenant_caps(movie: str) -> Tenant | None:
    """The tenant of a movie with its caps, when the movie is a tenant's and the accounts file exists."""
    tenant = tenant_of(movie)
    if tenant is None:
        return None
    accounts = open_accounts(create=False)
    return accounts.tenant(tenant) if accounts is not None else None
