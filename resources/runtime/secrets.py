"""Secrets never leave the process: ``redact`` cleans any text before it is stored, logged or printed.

Two things are replaced by ``[redacted]``:

- the value of every configured secret: the keys and tokens the resources read from the environment
  (``OPENAI_API_KEY``, ``REPLICATE_API_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, any
  variable whose name ends with ``_KEY``, ``_TOKEN``, ``_SECRET`` or ``_PASSWORD``), the passwords of
  URLs in the environment (``DAGSTER_PG_URL``, ``MOVIEGEN_LIMITS_URL``), read at call time, and the
  values ``register_secret`` was given (the keys the provider sessions were configured with);
- anything shaped like a secret: ``Bearer``/``Basic`` credentials, OpenAI keys (``sk-…``), Replicate
  tokens (``r8_…``), AWS access key ids, ``Authorization:``/``Cookie:``/``X-Api-Key:`` header lines,
  ``api_key=``/``token=``/``password=``/``X-Amz-Signature=``/``X-Amz-Credential=`` parameters, JSON
  fields named like a secret, and the password in ``scheme://user:password@host`` URLs.

Text is bounded (``limit`` characters, 2000 by default) so a provider answering a huge page costs
little; patterns are compiled once and the environment's secrets are compiled again only when they
change.
"""

from __future__ import annotations

import json
import os
import re
import threading
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MESSAGE_LIMIT = 2000  # a message: one failure, one log line
TEXT_LIMIT = 20000  # a composed text: a traceback, a run's failure description
MIN_SECRET_CHARS = 8  # shorter values are not treated as secrets (they would match ordinary words)

# Variables the resources read keys and tokens from, whatever their name's suffix.
SECRET_VARIABLES = ("OPENAI_API_KEY", "REPLICATE_API_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD", "_CREDENTIALS")
# Variables that name something, not a secret, although their name ends like one.
NOT_SECRET = frozenset({"AWS_ACCESS_KEY_ID"})

_NOT_YET = rf"(?!{re.escape(REDACTED)})"
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\"'<>]*:)([^\s/?#@\"'<>]+)(@)")
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Header lines: the value up to the end of the line (or of the quoted/HTML text around it).
    (re.compile(r"(?im)\b((?:proxy-)?authorization|x-api-key|api-key|x-goog-api-key|cookie|set-cookie|"
                r"x-amz-security-token)(\s*:\s*)(?!\s)" + _NOT_YET + r"[^\r\n\"'<>]+"), rf"\1\2{REDACTED}"),
    # Credentials after an auth scheme: at least 8 characters, one of them a digit or punctuation
    # (so "Bearer authentication required" stays as it is).
    # Tokens are base64url or JWTs; a full stop after one ends the sentence.
    (re.compile(r"(?i)\b(Bearer|Token)(\s+)" + _NOT_YET + r"(?=[\w.~+/=\-]*[\d_\-./+=])[\w.~+/=\-]{7,}[\w~+/=\-]"),
     rf"\1\2{REDACTED}"),
    # Basic credentials are base64: a digit, + / =, or a capital after the first letter ("Basic Plan" stays).
    (re.compile(r"\b(Basic)(\s+)(?=[A-Za-z0-9+/=]*[\d+/=]|[A-Za-z][a-z0-9+/]*[A-Z])[A-Za-z0-9+/]{8,}={0,2}"),
     rf"\1\2{REDACTED}"),
    # Query / form parameters and key=value pairs.
    (re.compile(r"(?i)(^|[?&;\s,(\"'])((?:x-amz-)?(?:signature|credential|security-token)|sig|"
                r"(?:[a-z]+[_-])?(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|token|"
                r"client[_-]?secret|secret|password|passwd|pwd))(=)" + _NOT_YET + r"[^&\s\"'<>#,;)]+"),
     rf"\1\2\3{REDACTED}"),
    # JSON or Python-literal fields named like a secret, with a string value.
    (re.compile(r"(?i)([\"'](?:[a-z_\-]*(?:api[_-]?key|apikey|token|secret|password|passwd|authorization))[\"']"
                r"\s*:\s*[\"'])" + _NOT_YET + r"[^\"'\r\n]+"), rf"\1{REDACTED}"),
    # Shapes of keys: OpenAI (sk-, sk-proj-, ...), Replicate (r8_), AWS access key ids.
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), REDACTED),
    (re.compile(r"\br8_[A-Za-z0-9]{8,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    (_URL_PASSWORD, rf"\1{REDACTED}\3"),
]

_lock = threading.Lock()
_registered: set[str] = set()
_registered_version = 0
_cache: tuple[tuple[object, ...], re.Pattern[str] | None] | None = None


def register_secret(value: str | None) -> None:
    """Redact ``value`` from now on (a key a session was configured with; shorter than 8 characters: ignored)."""
    global _registered_version
    if not value or len(value) < MIN_SECRET_CHARS:
        return
    with _lock:
        if value not in _registered:
            _registered.add(value)
            _registered_version += 1


def _is_secret_variable(name: str) -> bool:
    upper = name.upper()
    return upper not in NOT_SECRET and (upper in SECRET_VARIABLES or upper.endswith(SECRET_SUFFIXES))


def environment_secrets(environ: dict[str, str] | os._Environ[str] | None = None) -> set[str]:
    """The values of the environment's secrets: key and token variables, and URL passwords."""
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if not value:
            continue
        if _is_secret_variable(name) and len(value) >= MIN_SECRET_CHARS:
            found.add(value)
        if "://" in value and "@" in value:
            for m in _URL_PASSWORD.finditer(value):
                if len(m.group(2)) >= MIN_SECRET_CHARS:
                    found.add(m.group(2))
    return found


def _known_pattern() -> re.Pattern[str] | None:
    """One pattern matching every known secret value, compiled again only when they change."""
    global _cache
    candidates = tuple(sorted((k, v) for k, v in os.environ.items()
                              if v and (_is_secret_variable(k) or ("://" in v and "@" in v))))
    key = (candidates, _registered_version)
    cached = _cache
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        values = environment_secrets(dict(candidates)) | _registered
    # Each value also as JSON escapes it (``/`` as ``\/``, as some servers echo it) and as a URL encodes it.
    forms = {form for v in values for form in (v, json.dumps(v)[1:-1], json.dumps(v)[1:-1].replace("/", "\\/"),
                                                 quote(v, safe=""), quote_plus(v, safe=""))}
    pattern = re.compile("|".join(re.escape(v) for v in sorted(forms, key=len, reverse=True))) if forms else None
    _cache = (key, pattern)
    return pattern


def redact(text: object, limit: int | None = MESSAGE_LIMIT) -> str:
    """``text`` with every secret replaced by ``[redacted]``, cut to ``limit`` characters (None: no cut
    beyond a hard bound of 1 MB)."""
    text = text if isinstance(text, str) else str(text)
    bound = limit if limit is not None else 1_000_000
    # Cut before matching (bounded time), with a margin so a secret cut in two at that point lies beyond
    # the final cut; a secret at the final cut is redacted before it, never half kept.
    more = len(text) - bound
    if more > 0:
        text = text[:bound + 1024]
    known = _known_pattern()
    if known is not None:
        text = known.sub(REDACTED, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    if more > 0:
        text = text[:bound] + f"… [{more} more characters]"
    return text
