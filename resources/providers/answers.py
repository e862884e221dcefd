"""A provider's answer, read before it is used: base64, a file to download, media bytes.

A call that succeeded can still answer something unusable: base64 that is not a picture, a truncated
PNG or MP3, an output URL that answers 404 or an HTML page. Each raises a MalformedAnswer naming the
provider (``who``) and what was wrong, never an error of this machine's. Each provider client reads its
own JSON with the same rule (openai/client.py, replicate/client.py).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_to_bytes

import httpx

from resources.providers.base import ErrorCategory, MalformedAnswer, ProviderError
from resources.runtime.media import BadMedia, check_decodes, read_image

WHAT = {"image": "an image", "video": "a video", "audio": "audio"}


def one_line(e: BaseException) -> str:
    """An exception's first line (a parser's error may run over several), or its type."""
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(e).__name__


def plain_url(url: str) -> str:
    """A URL as shown in a message: without its query (a signed URL's signature) and at most 200 characters."""
    return url.split("?", 1)[0][:200]


def unreadable(who: str, kind: str, why: str, provider: str) -> MalformedAnswer:
    return MalformedAnswer(f"{who} answered with {WHAT[kind]} that cannot be read ({why})", provider=provider)


def decode_base64(text: object, who: str, kind: str, provider: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise MalformedAnswer(f"{who} answered without {WHAT[kind]} (no base64 data)", provider=provider)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise unreadable(who, kind, f"invalid base64: {one_line(e)}", provider) from None


def check_media(data: bytes, kind: str, who: str, provider: str) -> None:
    """That an answer's ``kind`` ("image", "audio", "video") reads to its end (blocking: call it in a thread)."""
    try:
        if kind == "image":
            read_image(data)
        else:
            check_decodes(data, kind)
    except BadMedia as e:
        raise unreadable(who, kind, str(e), provider) from None


async def download(url: object, who: str, kind: str, provider: str, timeout_s: float) -> bytes:
    """The file an answer links to: a ``data:`` URI decoded, an http(s) URL fetched (at once: providers
    delete outputs after a while)."""
    if not isinstance(url, str) or not url.startswith(("data:", "http://", "https://")):
        raise MalformedAnswer(f"{who} answered with an output that is not a file URL ({str(url)[:80]!r})", provider=provider)
    if url.startswith("data:"):
        header, comma, payload = url.partition(",")
        if not comma:
            raise unreadable(who, kind, "a data: URI without data", provider)
        return decode_base64(payload, who, kind, provider) if header.endswith(";base64") else unquote_to_bytes(payload)
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as http:
            response = await http.get(url)
    except httpx.TransportError as e:
        raise ProviderError(f"cannot download the output of {who} from {plain_url(url)}: {one_line(e)}", provider=provider,
                            category=ErrorCategory.outage) from None
    if response.status_code >= 400:
        raise MalformedAnswer(f"{who} answered with an output URL that cannot be downloaded: {plain_url(url)} "
                              f"({response.status_code} {response.reason_phrase})", provider=provider)
    return response.content
