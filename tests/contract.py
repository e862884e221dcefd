"""The regeneration contract: each edit of a generated movie (n=3 segments, m=2 images, segment 2 a
text-to-video segment) and exactly the provider calls the next generate makes for it."""

from __future__ import annotations

from typing import Any

from movie_assets.domain.edits import UNSET

N, M = 3, 2

CONTRACT: list[tuple[str, list[tuple[str, Any]], dict[str, int]]] = [
    ("nothing", [], {}),
    ("one narration", [("segments.1.narration", "A brand new line about the war.")],
     {"AudioProducer": 1, "TextToImagePromptProducer": 1, "TextToImageProducer": M}),
    ("one image prompt override", [("segments.0.image_prompts.1", "a quiet battlefield at dawn")], {"TextToImageProducer": 1}),
    ("voice", [("voice_id", "onyx")], {"AudioProducer": N}),
    ("assembly strategy", [("assembly_strategy", "crossfade")], {}),
    ("image style", [("image_style", "watercolor")],
     {"LookProducer": 1, "TextToImagePromptProducer": 2, "TextToImageProducer": 2 * M, "TextToVideoPromptProducer": 1, "TextToVideoProducer": 1}),
    ("image-only segment to image-to-video", [("segments.1.use_video", True), ("segments.1.is_image_to_video", True)],
     {"ImageToVideoPromptProducer": 1, "StartingImageProducer": 1, "ImageToVideoProducer": 1}),
    ("music prompt override", [("music_prompt", "slow solo cello")], {"MusicProducer": 1}),
    # The look: an edit of one field starts from the look the movie has (no call for the look itself); every
    # visual prompt carries the palette, so every visual prompt is rebuilt -- without asking the LLM again (the
    # same question, the same shot) -- and every picture and clip below them; nothing else.
    ("look palette", [("look.palette", "ink black #101010, bone white #f4f1ea, rust #9c4a2f")],
     {"TextToImageProducer": 2 * M, "TextToVideoProducer": 1}),
    ("look lighting and camera", [("look.lighting", "hard noon sun"), ("look.camera", "handheld 24mm")],
     {"TextToImageProducer": 2 * M, "TextToVideoProducer": 1}),
    # A character's description: only the shots that name the character change (the offline writer names The
    # Witness in the close-up and group shots: images 00_1, 01_0 and 01_1 here, and the clip of segment 2).
    ("look character", [("look.characters.The Witness", "an old man with a white beard and a cane")],
     {"TextToImageProducer": 3, "TextToVideoProducer": 1}),
    ("one segment off-look", [("segments.0.look", False)], {"TextToImagePromptProducer": 1, "TextToImageProducer": M}),
    # A quality of the movie's own size (480p): the pictures stay, the timeline takes the quality's 24 fps (no call);
    # another size: every picture and clip is made again at it.
    ("quality of the same size", [("quality", "draft")], {}),
    ("quality of another size", [("size", UNSET), ("quality", "standard")], {"TextToImageProducer": 2 * M, "TextToVideoProducer": 1}),
    ("look turned off", [("consistent_look", False)],
     {"TextToImagePromptProducer": 2, "TextToImageProducer": 2 * M, "TextToVideoPromptProducer": 1, "TextToVideoProducer": 1}),
    # Research: the user's sources and facts reach the script through the research. A pasted source gives the
    # research a fact (the offline writer tells the first such fact in segment 1): the research, the script and
    # the look are asked again, the music prompt comes out the same (its music stays), and only segment 1's
    # narration changes below -- its audio, its image prompts and its pictures.
    ("a pasted source", [("sources", ["The war began in 1861 when Confederate guns fired on Fort Sumter."])],
     {"ResearchProducer": 1, "ScriptProducer": 1, "LookProducer": 1, "TextToMusicPromptProducer": 1, "AudioProducer": 1,
      "TextToImagePromptProducer": 1, "TextToImageProducer": M}),
    # A URL is cited (never fetched): the research changes, the script is asked again and comes out the same.
    ("a URL source", [("sources.0", "https://en.wikipedia.org/wiki/American_Civil_War")],
     {"ResearchProducer": 1, "ScriptProducer": 1}),
    # An edited fact: the research is rebuilt without asking again (the same question), the script tells the fact.
    ("an edited fact", [("facts.0", "Abraham Lincoln was president of the United States during the war.")],
     {"ScriptProducer": 1, "LookProducer": 1, "TextToMusicPromptProducer": 1, "AudioProducer": 1,
      "TextToImagePromptProducer": 1, "TextToImageProducer": M}),
]
