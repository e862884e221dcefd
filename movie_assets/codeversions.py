"""Code versions of the producers: they change when a prompt template or the model changes, and
Dagster then marks what the old version made as stale."""

from __future__ import annotations

from .blueprint import ARTIFACTS, ArtifactDecl
from .prompts import TEMPLATE_VERSIONS

_TEMPLATE_OF = {
    "script": "script",
    "music_prompt": "music_prompt",
    "image_prompt": "image_prompts",
    "text_to_video_prompt": "text_to_video_prompt",
    "image_to_video_prompt": "image_to_video_prompt",
}


def code_version(decl: ArtifactDecl) -> str:
    template = TEMPLATE_VERSIONS.get(_TEMPLATE_OF.get(decl.name, ""), "")
    return "|".join(p for p in (decl.code_version, template) if p)


ARTIFACT_CODE_VERSIONS: dict[str, str] = {name: code_version(decl) for name, decl in ARTIFACTS.items()}
