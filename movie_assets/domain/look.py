"""The movie's look: a style guide written once after the script (palette, lighting, camera language,
recurring characters and places with fixed descriptions), the user's edits over it, and the clause
every visual prompt carries.

A prompt carries the look as a clause after its shot: the palette, the lighting, the camera, and the
fixed description of every recurring character and place the shot names. The clause is added in code
(not left to the LLM), so every shot carries it word for word, also a shot the user wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from movie_assets.domain.request import MAX_RECURRING, LookOverride

LOOK_MARK = " | Look: "
LOOK_FIELDS = ("palette", "lighting", "camera")
_KINDS = ("characters", "places")
_NAME_LIMIT, _TEXT_LIMIT = 60, 500
_NOT_IN_NAMES = re.compile(r"[\n|;:.=]+")


def _text(value: Any) -> str:
    return " ".join(str(value).split())[:_TEXT_LIMIT]


def tidy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A generated look in the form the request's ``look`` accepts: names without the characters edit
    paths and the clause use (``. : ; | =``), at most 60 characters, no repeats, at most 12 per kind;
    texts on one line, at most 500 characters (an LLM's answer is not trusted to be in bounds)."""
    out: dict[str, Any] = {f: _text(data[f]) or "-" for f in LOOK_FIELDS}
    for kind in _KINDS:
        seen, entries = set(), []
        for e in data[kind]:
            name = " ".join(_NOT_IN_NAMES.sub(" ", str(e["name"])).split())[:_NAME_LIMIT].strip()
            if name and name.lower() not in seen and len(entries) < MAX_RECURRING:
                seen.add(name.lower())
                entries.append({"name": name, "description": _text(e["description"]) or "-"})
        out[kind] = entries
    return out


def merged(generated: Mapping[str, Any] | None, edited: LookOverride | None) -> dict[str, Any]:
    """The look a movie uses: each field the user set wins over the generated one."""
    out = dict(generated or {})
    for f in LOOK_FIELDS:
        if edited is not None and getattr(edited, f) is not None:
            out[f] = getattr(edited, f)
    for kind in _KINDS:
        own = getattr(edited, kind) if edited is not None else None
        if own is not None:
            out[kind] = [{"name": n, "description": d} for n, d in own.items()]
    references = edited.references if edited is not None else None
    if references:
        names = {e["name"] for k in _KINDS for e in out.get(k, [])}
        out["references"] = [{"name": n, "node": r.node, "version": r.version} for n, r in references.items() if n in names]
    return out


def as_override(look: Mapping[str, Any]) -> dict[str, Any]:
    """A look in the request's form (``look:`` with name: description mappings): where the first edit of
    a character or place starts, so the rest of the cast stays."""
    return {**{f: look[f] for f in LOOK_FIELDS}, **{k: {e["name"]: e["description"] for e in look[k]} for k in _KINDS}}


def names_in(shot: str, look: Mapping[str, Any]) -> list[dict[str, str]]:
    """The recurring characters and places a shot names (whole words, any case), in the look's order."""
    return [e for e in [*look["characters"], *look["places"]]
            if re.search(rf"(?<!\w){re.escape(e['name'])}(?!\w)", shot, re.IGNORECASE)]


def shot_of(prompt: str) -> str:
    """The shot a prompt describes, without its look clause."""
    return prompt.split(LOOK_MARK, 1)[0].rstrip()


def with_look(shot: str, look: Mapping[str, Any]) -> str:
    """The prompt of a shot that carries the look (a look clause already in ``shot`` is replaced)."""
    shot = shot_of(shot).rstrip(" .;")
    clause = LOOK_MARK + "; ".join(f"{f} {look[f]}" for f in LOOK_FIELDS) + "."
    recurring = names_in(shot, look)
    if recurring:
        clause += " Recurring: " + "; ".join(f"{e['name']}, {e['description']}" for e in recurring) + "."
    return shot + clause


def carried(shot: str, look: Mapping[str, Any]) -> dict[str, Any]:
    """What of the look a shot carries: the palette, lighting and camera, and only the recurring characters
    and places it names (kept with its prompt for the check; an edit of a description the shot does not
    name leaves the prompt, and the picture below it, as they are)."""
    named = {e["name"] for e in names_in(shot_of(shot), look)}
    out = {**{f: look[f] for f in LOOK_FIELDS}, **{k: [e for e in look[k] if e["name"] in named] for k in _KINDS}}
    references = [r for r in look.get("references", []) if r["name"] in named]
    return out | ({"references": references} if references else {})


def look_problems(prompt: str, look: Mapping[str, Any]) -> list[str]:
    """What a prompt lacks of the look: a field's text, or the fixed description of a recurring
    character or place its shot names. Empty: it carries the look."""
    problems = [f"no {f}" for f in LOOK_FIELDS if look[f] not in prompt]
    problems += [f"names {e['name']!r} without its description" for e in names_in(shot_of(prompt), look)
                 if e["description"] not in prompt]
    return problems
