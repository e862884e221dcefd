"""Editing a movie's request: ``--set PATH=VALUE``, ``--unset PATH`` or an edits file.

Paths use the request's field names: ``voice_id``, ``segments.1.narration``,
``segments.3.image_prompts.0``. An edit is validated like a new request; a bad edit changes nothing.
An edit that leaves the request as it was changes nothing either. (Applying an edit to a stored
movie -- storing it, observing the changed inputs, logging it -- is ``orchestration.editing``.)
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from movie_assets.domain.look import as_override
from movie_assets.domain.request import (
    LookOverride,
    MovieRequest,
    RequestError,
    SegmentOverrides,
    own_source_kind,
    parse_document,
    parse_request,
    read_document,
    yaml_load,
)

UNSET = object()
_SEGMENT_FIELDS = set(SegmentOverrides.model_fields)
_TOP_FIELDS = set(MovieRequest.model_fields) - {"segments"}


@dataclass
class Change:
    path: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


_PER_IMAGE = {"image_prompts", "image_takes", "image_files"}  # segments.<i>.<field>.<j>
_LOOK_FIELDS = set(LookOverride.model_fields)
_LOOK_NAMED = {"characters", "places", "references"}  # look.<kind>.<name>


def _check_path(path: str) -> list[str]:
    parts = path.split(".")
    ok = (
        (len(parts) == 1 and parts[0] in _TOP_FIELDS)
        or (len(parts) == 3 and parts[0] == "segments" and parts[1].isdigit() and parts[2] in _SEGMENT_FIELDS - _PER_IMAGE)
        or (len(parts) == 4 and parts[0] == "segments" and parts[1].isdigit() and parts[2] in _PER_IMAGE and parts[3].isdigit())
        or (len(parts) == 2 and parts[0] in ("sources", "facts") and parts[1].isdigit())
        or (len(parts) == 2 and parts[0] == "look" and parts[1] in _LOOK_FIELDS)
        or (len(parts) == 3 and parts[0] == "look" and parts[1] in _LOOK_NAMED and parts[2].strip() == parts[2] != "")
    )
    if not ok:
        shown = path if len(path) <= 80 else path[:77] + "..."
        raise RequestError([
            f"{shown}: not an editable path; allowed: a request field ({', '.join(sorted(_TOP_FIELDS))}), "
            f"segments.<i>.<{'|'.join(sorted(_SEGMENT_FIELDS - _PER_IMAGE))}>, segments.<i>.image_prompts.<j>, "
            f"segments.<i>.image_takes.<j>, segments.<i>.image_files.<j>, sources.<i>, facts.<i>, look.<{'|'.join(sorted(_LOOK_FIELDS))}> or "
            "look.<characters|places|references>.<name>"
        ])
    return parts


def _cast_kinds(edits: list[tuple[str, Any]]) -> set[str]:
    """The kinds of the look's cast (characters, places) these edits change."""
    return {path.split(".")[1] for path, _ in edits if path.startswith(("look.characters.", "look.places."))}


def touches_look(edits: list[tuple[str, Any]]) -> bool:
    """Whether these edits change the look's cast (they start from the cast the movie has)."""
    return bool(_cast_kinds(edits))


def parse_assignment(text: str) -> tuple[str, Any]:
    """``PATH=VALUE``; the value is read as YAML when it is a number, a boolean, null or a quoted string
    (``duration_seconds=20`` sets the integer 20), else kept as text exactly as written (also ``#`` in it,
    a list or mapping, or text beyond yaml_load's bounds)."""
    if "=" not in text:
        shown = repr(text) if len(text) <= 80 else repr(text[:77]) + "..."
        raise RequestError([f"--set {shown}: expected PATH=VALUE, e.g. voice_id=nova or segments.1.narration='New text'"])
    path, raw = text.split("=", 1)
    try:
        value = yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    quoted = len(raw.strip()) >= 2 and raw.strip()[0] == raw.strip()[-1] and raw.strip()[0] in "'\""
    if isinstance(value, dict | list):
        value = raw
    elif isinstance(value, str) and not quoted:
        value = raw.strip()  # text stays as written: "navy #0c1426" is not cut at YAML's comment sign
    return path.strip(), UNSET if value is None else value


def edits_from_data(data: Any, label: str = "edits file") -> list[tuple[str, Any]]:
    """Edits from a mapping of PATH: VALUE (``null`` removes an override)."""
    if not isinstance(data, dict):
        raise RequestError([f"{label}: expected a mapping of PATH: VALUE, got {type(data).__name__}"])
    return [(_path_text(k), UNSET if v is None else v) for k, v in data.items()]


def _path_text(key: Any) -> str:
    try:
        return str(key)
    except ValueError:  # an integer of more than 4 300 digits cannot be printed; _check_path refuses the path
        return "(a number too long to show)"


_OWN_FILE_PATH = re.compile(r"^(music_file|segments\.\d+\.(audio_file|clip_file|starting_image_file|image_files\.\d+))$")


def is_own_file_path(path: str) -> bool:
    """Whether an edit path names a slot's file of the user's (``music_file``, ``segments.1.image_files.0``...)."""
    return bool(_OWN_FILE_PATH.match(path))


def load_edits_file(path: str | Path) -> list[tuple[str, Any]]:
    """A YAML/JSON file of PATH: VALUE (``null`` removes an override). A file of the user's named by a relative
    path is read from the edits file's folder."""
    edits = edits_from_data(parse_document(read_document(path, "edits file"), str(path), "edits file"))
    folder = Path(path).parent
    return [(p, str(folder / v) if is_own_file_path(p) and isinstance(v, str) and _relative_path(v) else v) for p, v in edits]


def _relative_path(value: str) -> bool:
    try:
        return own_source_kind(value) == "path" and not Path(value).expanduser().is_absolute()
    except ValueError:
        return False


def apply_edits(document: dict[str, Any], edits: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    for path, value in edits:
        parts = _check_path(path)
        if parts[0] == "sources" and len(parts) == 2:
            _edit_source(doc, int(parts[1]), value)
            continue
        node = doc
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if value is UNSET:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    if doc.get("facts") == {}:  # the last edited fact removed: the generated facts again
        doc.pop("facts")
    look = doc.get("look")
    if isinstance(look, dict):
        if look.get("references") == {}:  # the last reference removed (no characters or places stays "none")
            look.pop("references")
        if not look:  # the last field of the look removed: the generated look again
            doc.pop("look")
    segments = doc.get("segments", {})
    for i in list(segments):
        for per_image in sorted(_PER_IMAGE):
            if not segments[i].get(per_image, True):
                segments[i].pop(per_image)
        if not segments[i]:
            segments.pop(i)
    return doc


def _edit_source(doc: dict[str, Any], index: int, value: Any) -> None:
    """``sources.<i>``: replace source i, add one at the end (i = the number of sources), or remove source i."""
    sources = doc.get("sources")
    sources = list(sources) if isinstance(sources, list) else []
    if value is UNSET:
        if index < len(sources):
            sources.pop(index)
    elif index < len(sources):
        sources[index] = value
    elif index == len(sources):
        sources.append(value)
    else:
        raise RequestError([f"sources.{index}: no source {index} to replace; allowed: sources.0 to sources.{len(sources)} "
                            f"(sources.{len(sources)} adds one; the movie has {len(sources)})"])
    doc["sources"] = sources


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(doc, dict) and not is_own_file_path(prefix.rstrip(".")):  # a file of the user's is one value
        out: dict[str, Any] = {}
        for k, v in doc.items():
            out |= _flatten(v, f"{prefix}{k}.")
        return out
    return {prefix.rstrip("."): doc}


def plain_document(request: MovieRequest) -> dict[str, Any]:
    return json.loads(json.dumps(request.to_document()))


def diff(old: MovieRequest, new: MovieRequest) -> list[Change]:
    """Every path whose value differs between two requests."""
    a, b = _flatten(plain_document(old)), _flatten(plain_document(new))
    return [Change(p, a.get(p), b.get(p)) for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)]


def edited_request(current: MovieRequest, edits: list[tuple[str, Any]], look: dict[str, Any] | None = None) -> MovieRequest:
    """The request after these edits, validated like a new one; a bad edit raises RequestError. ``look``:
    the look the movie has now; an edit of one recurring character or place starts from its cast (the
    others stay as they are)."""
    if not edits:
        raise RequestError(["edit: nothing to change; give --set PATH=VALUE, --unset PATH or --file EDITS.yaml"])
    document = plain_document(current)
    if look is not None and (kinds := _cast_kinds(edits)):
        # An edit of one recurring character (or place) starts from the cast the movie has, so the others stay;
        # palette, lighting and camera are edited one field at a time over the generated look.
        cast = as_override(look)
        own = document.setdefault("look", {})
        for kind in kinds:
            own.setdefault(kind, cast[kind])
    try:
        return parse_request(apply_edits(document, edits))
    except RequestError as e:
        raise RequestError([f"edit rejected, nothing changed: {p}" for p in e.problems]) from None
