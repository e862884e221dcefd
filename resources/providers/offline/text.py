"""The offline writer: readable scripts and prompts from templates, in six languages (each text in its own
language, never with a question in another language pasted in; narration paced to fill its segment).

Deterministic for the same inputs. It uses the structured context of each task (topic, audience,
language, narration, style), not the prompt text, so it behaves the same whatever the prompt template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from movie_assets.domain import pace
from movie_assets.domain.request import source_kind, topic_of

# Per language: a title, a summary, an opening per audience, beats for the middle and a closing.
# Each beat is one 10 s segment of narration (about 20-25 words at a calm pace).
_TEXT: dict[str, dict[str, object]] = {
    "en": {
        "title": "{Topic}: A Short Explainer",
        "summary": "A {n}-segment explainer about {topic} for {audience}: where it began, what happened, who shaped it and why it still matters.",
        "audience": {"children": "young viewers", "general": "a general audience", "students": "students", "experts": "experts"},
        "open": {
            "children": "Hello, explorers! Today we are going on a journey to discover {topic}, one small step at a time.",
            "general": "Let's take a short journey through {topic}: what it is, how it unfolded, and why it still matters today.",
            "students": "In this short lesson we examine {topic}: its causes, its key moments, and the ideas you should remember.",
            "experts": "This brief overview of {topic} revisits its origins, its decisive turns, and the debates that still surround it.",
        },
        "beats": [
            "To understand {topic}, we start with the world around it: the people, the places and the pressures that set everything in motion.",
            "The first signs appeared slowly. Small disagreements and new ideas grew until they could no longer be ignored.",
            "Then came the turning point. A single moment changed the direction of {topic} and surprised almost everyone involved.",
            "Behind every event were real people. Leaders, workers and families each made choices that shaped what happened next.",
            "Daily life changed too. Ordinary routines, from work to food to travel, were reshaped by {topic} in unexpected ways.",
            "Not everyone agreed. Different groups saw {topic} very differently, and those arguments still echo in how we remember it.",
            "Technology and geography mattered as well. Roads, rivers, tools and distances decided what was possible and what was not.",
            "Some moments became symbols. Their images and words were repeated for generations, turning history into shared memory.",
            "The consequences reached far beyond the first events, changing laws, borders and the lives of people not yet born.",
            "Historians keep discovering new details, and each discovery adds a little more light to the story of {topic}.",
        ],
        "bridges": ["It is worth a closer look.", "Each step led to the next.", "Picture the scene for a moment.",
                    "The details matter here.", "And that was not all.", "Think about what that meant."],
        "close": "So that is {topic}: a story of causes, choices and consequences. Remember it, question it, and keep exploring.",
        "generic": "this topic",
        "title_quoted": "“{question}”: A Short Explainer",
    },
    "es": {
        "title": "«{question}»: una breve explicación",
        "summary": "Una explicación en {n} partes para {audience}: cómo empezó, qué ocurrió, quién influyó y por qué aún importa.",
        "audience": {"children": "niños", "general": "todo público", "students": "estudiantes", "experts": "expertos"},
        "ask": "Nuestra pregunta de hoy es: «{question}».",
        "follow": "Busquemos juntos la respuesta, paso a paso, desde el principio.",
        "open": {
            "children": "¡Hola, exploradores! Hoy vamos a descubrir un tema fascinante, paso a paso y con mucha curiosidad.",
            "general": "Hagamos un breve recorrido por este tema: qué es, cómo se desarrolló y por qué sigue importando hoy.",
            "students": "En esta breve lección estudiamos este tema: sus causas, sus momentos clave y las ideas que conviene recordar.",
            "experts": "Este breve repaso revisa los orígenes del tema, sus giros decisivos y los debates que aún lo rodean.",
        },
        "beats": [
            "Para entenderlo, empezamos por el contexto: las personas, los lugares y las tensiones que lo pusieron todo en marcha.",
            "Las primeras señales llegaron despacio. Pequeños desacuerdos e ideas nuevas crecieron hasta que nadie pudo ignorarlos.",
            "Entonces llegó el momento decisivo. Un solo instante cambió el rumbo de la historia y sorprendió a casi todos.",
            "Detrás de cada hecho había personas reales. Líderes, trabajadores y familias tomaron decisiones que marcaron lo que vino después.",
            "La vida diaria también cambió. El trabajo, la comida y los viajes se transformaron de maneras inesperadas.",
            "No todos estaban de acuerdo. Cada grupo lo vio de forma distinta, y esos debates aún resuenan hoy.",
            "La tecnología y la geografía también importaron. Caminos, ríos y herramientas decidieron qué era posible.",
            "Algunos momentos se convirtieron en símbolos, repetidos durante generaciones hasta volverse memoria compartida.",
            "Las consecuencias llegaron muy lejos, cambiando leyes, fronteras y la vida de personas que aún no habían nacido.",
            "Los investigadores siguen descubriendo detalles, y cada hallazgo ilumina un poco más esta historia.",
        ],
        "bridges": ["Vale la pena mirarlo de cerca.", "Cada paso llevó al siguiente.", "Imaginemos la escena por un momento.",
                    "Los detalles importan mucho aquí.", "Y eso no fue todo.", "Pensemos en lo que eso significaba."],
        "close": "Así es esta historia de causas, decisiones y consecuencias. Recuérdala, cuestiónala y sigue explorando.",
    },
    "fr": {
        "title": "« {question} » : une courte explication",
        "summary": "Une explication en {n} parties pour {audience} : ses débuts, son déroulement, ses acteurs et son importance.",
        "audience": {"children": "les enfants", "general": "tous les publics", "students": "les étudiants", "experts": "les experts"},
        "ask": "Notre question du jour : « {question} »",
        "follow": "Cherchons ensemble la réponse, pas à pas, depuis le début.",
        "open": {
            "children": "Bonjour, les explorateurs ! Aujourd'hui, nous partons découvrir un sujet passionnant, pas à pas.",
            "general": "Faisons un court voyage à travers ce sujet : ce que c'est, comment cela s'est déroulé et pourquoi cela compte encore.",
            "students": "Dans cette courte leçon, nous étudions ce sujet : ses causes, ses moments clés et les idées à retenir.",
            "experts": "Ce bref aperçu revient sur les origines du sujet, ses tournants décisifs et les débats qui l'entourent encore.",
        },
        "beats": [
            "Pour comprendre, commençons par le contexte : les personnes, les lieux et les tensions qui ont tout déclenché.",
            "Les premiers signes sont apparus lentement. De petits désaccords et des idées nouvelles ont grandi jusqu'à s'imposer.",
            "Puis vint le tournant. Un seul moment a changé la direction de l'histoire et surpris presque tout le monde.",
            "Derrière chaque événement, il y avait des personnes réelles, dont les choix ont façonné la suite.",
            "La vie quotidienne a changé elle aussi : le travail, la nourriture et les voyages se sont transformés.",
            "Tout le monde n'était pas d'accord. Chaque groupe le voyait autrement, et ces débats résonnent encore.",
            "La technique et la géographie comptaient aussi. Routes, rivières et outils décidaient de ce qui était possible.",
            "Certains moments sont devenus des symboles, répétés pendant des générations jusqu'à devenir mémoire commune.",
            "Les conséquences ont dépassé les premiers événements, changeant les lois, les frontières et des vies entières.",
            "Les chercheurs découvrent encore de nouveaux détails, et chacun éclaire un peu plus cette histoire.",
        ],
        "bridges": ["Cela mérite qu'on s'y arrête.", "Chaque étape menait à la suivante.", "Imaginons la scène un instant.",
                    "Les détails comptent beaucoup ici.", "Et ce n'était pas tout.", "Pensons à ce que cela voulait dire."],
        "close": "Voilà une histoire de causes, de choix et de conséquences. Souvenez-vous-en et continuez à explorer.",
    },
    "de": {
        "title": "„{question}“ – kurz erklärt",
        "summary": "Eine Erklärung in {n} Teilen für {audience}: Anfänge, Verlauf, wichtige Personen und heutige Bedeutung.",
        "audience": {"children": "Kinder", "general": "ein breites Publikum", "students": "Studierende", "experts": "Fachleute"},
        "ask": "Unsere Frage heute lautet: „{question}“",
        "follow": "Suchen wir gemeinsam die Antwort, Schritt für Schritt, von Anfang an.",
        "open": {
            "children": "Hallo, ihr Entdecker! Heute gehen wir auf eine Reise und entdecken ein spannendes Thema, Schritt für Schritt.",
            "general": "Machen wir eine kurze Reise durch unser Thema: was es ist, wie es verlief und warum es heute noch zählt.",
            "students": "In dieser kurzen Lektion untersuchen wir unser Thema: die Ursachen, die Schlüsselmomente und was man sich merken sollte.",
            "experts": "Dieser kurze Überblick betrachtet die Ursprünge des Themas, entscheidende Wendungen und offene Debatten.",
        },
        "beats": [
            "Um es zu verstehen, beginnen wir mit dem Umfeld: den Menschen, Orten und Spannungen, die alles ins Rollen brachten.",
            "Die ersten Anzeichen kamen langsam. Kleine Streitpunkte und neue Ideen wuchsen, bis niemand sie übersehen konnte.",
            "Dann kam der Wendepunkt. Ein einziger Moment änderte die Richtung der Geschichte und überraschte fast alle.",
            "Hinter jedem Ereignis standen echte Menschen, deren Entscheidungen den weiteren Verlauf prägten.",
            "Auch der Alltag veränderte sich: Arbeit, Essen und Reisen wandelten sich auf unerwartete Weise.",
            "Nicht alle waren sich einig. Verschiedene Gruppen sahen es ganz unterschiedlich, bis heute.",
            "Technik und Geografie spielten ebenfalls eine Rolle. Straßen, Flüsse und Werkzeuge bestimmten, was möglich war.",
            "Manche Momente wurden zu Symbolen und über Generationen weitererzählt, bis sie gemeinsame Erinnerung waren.",
            "Die Folgen reichten weit über die ersten Ereignisse hinaus und veränderten Gesetze, Grenzen und Leben.",
            "Forscher entdecken immer neue Details, und jedes bringt ein wenig mehr Licht in diese Geschichte.",
        ],
        "bridges": ["Das lohnt einen genauen Blick.", "Ein Schritt führte zum nächsten.", "Stellen wir uns die Szene kurz vor.",
                    "Hier kommt es auf Details an.", "Und das war noch nicht alles.", "Überlegen wir, was das bedeutete."],
        "close": "Das war eine Geschichte von Ursachen, Entscheidungen und Folgen. Bleibt neugierig und forscht weiter.",
    },
    "it": {
        "title": "«{question}»: una breve spiegazione",
        "summary": "Una spiegazione in {n} parti per {audience}: come è iniziato, cosa è successo, chi l'ha plasmato e perché conta.",
        "audience": {"children": "bambini", "general": "tutti", "students": "studenti", "experts": "esperti"},
        "ask": "La nostra domanda di oggi è: «{question}».",
        "follow": "Cerchiamo insieme la risposta, passo dopo passo, dall'inizio.",
        "open": {
            "children": "Ciao, esploratori! Oggi partiamo per scoprire un tema affascinante, un piccolo passo alla volta.",
            "general": "Facciamo un breve viaggio attraverso questo tema: cos'è, come si è svolto e perché conta ancora oggi.",
            "students": "In questa breve lezione studiamo questo tema: le cause, i momenti chiave e le idee da ricordare.",
            "experts": "Questa breve panoramica ripercorre le origini del tema, le svolte decisive e i dibattiti ancora aperti.",
        },
        "beats": [
            "Per capirlo, partiamo dal contesto: le persone, i luoghi e le tensioni che misero tutto in moto.",
            "I primi segnali arrivarono lentamente. Piccoli disaccordi e idee nuove crebbero finché nessuno poté ignorarli.",
            "Poi arrivò la svolta. Un solo momento cambiò la direzione della storia e sorprese quasi tutti.",
            "Dietro ogni evento c'erano persone reali, le cui scelte plasmarono ciò che venne dopo.",
            "Anche la vita quotidiana cambiò: lavoro, cibo e viaggi si trasformarono in modi inattesi.",
            "Non tutti erano d'accordo. Ogni gruppo lo vedeva in modo diverso, e quei dibattiti risuonano ancora.",
            "Contavano anche tecnologia e geografia. Strade, fiumi e strumenti decidevano cosa era possibile.",
            "Alcuni momenti divennero simboli, ripetuti per generazioni fino a diventare memoria condivisa.",
            "Le conseguenze andarono ben oltre i primi eventi, cambiando leggi, confini e intere vite.",
            "I ricercatori scoprono ancora nuovi dettagli, e ognuno illumina un po' di più questa storia.",
        ],
        "bridges": ["Vale la pena guardarlo da vicino.", "Ogni passo portò al successivo.", "Immaginiamo la scena per un momento.",
                    "Qui i dettagli contano molto.", "E non era tutto.", "Pensiamo a cosa significava."],
        "close": "Ecco una storia di cause, scelte e conseguenze. Ricordala, mettila in discussione e continua a esplorare.",
    },
    "pt": {
        "title": "“{question}”: uma breve explicação",
        "summary": "Uma explicação em {n} partes para {audience}: como começou, o que aconteceu, quem influenciou e por que importa.",
        "audience": {"children": "crianças", "general": "todos os públicos", "students": "estudantes", "experts": "especialistas"},
        "ask": "Nossa pergunta de hoje é: “{question}”",
        "follow": "Vamos buscar juntos a resposta, passo a passo, desde o início.",
        "open": {
            "children": "Olá, exploradores! Hoje vamos descobrir um tema fascinante, um pequeno passo de cada vez.",
            "general": "Vamos fazer juntos uma breve viagem por este tema: o que é, como aconteceu, quem participou e por que ainda importa hoje.",
            "students": "Nesta breve lição estudamos este tema: as causas, os momentos-chave e as ideias que vale a pena lembrar.",
            "experts": "Este breve panorama revisita as origens do tema, as viradas decisivas e os debates que ainda o cercam.",
        },
        "beats": [
            "Para entender, começamos pelo contexto: as pessoas, os lugares e as tensões que puseram tudo em movimento.",
            "Os primeiros sinais chegaram devagar. Pequenas discordâncias e ideias novas cresceram até ninguém poder ignorá-las.",
            "Então veio a virada. Um único momento mudou a direção da história e surpreendeu quase todos.",
            "Por trás de cada acontecimento havia pessoas reais, cujas escolhas moldaram o que veio depois.",
            "A vida diária também mudou: trabalho, comida e viagens se transformaram de maneiras inesperadas.",
            "Nem todos concordavam. Cada grupo via o assunto de um jeito diferente, e esses debates ainda ecoam.",
            "Tecnologia e geografia também importavam. Estradas, rios e ferramentas decidiam o que era possível.",
            "Alguns momentos viraram símbolos, repetidos por gerações até se tornarem memória compartilhada.",
            "As consequências foram muito além dos primeiros eventos, mudando leis, fronteiras e vidas inteiras.",
            "Os pesquisadores ainda descobrem novos detalhes, e cada um ilumina um pouco mais esta história.",
        ],
        "bridges": ["Vale a pena olhar de perto.", "Cada passo levou ao seguinte.", "Imaginemos a cena por um momento.",
                    "Aqui os detalhes importam muito.", "E isso não foi tudo.", "Pensemos no que isso significava."],
        "close": "Essa é uma história de causas, escolhas e consequências. Lembre-se dela e continue explorando.",
    },
}

# Words that mark a question's language (a few frequent function words each). A question is written in
# a language when that language's words are at least as many as any other's (and there is one).
_MARKERS = {
    "en": set("the of and to is are was were how what why who did do does about tell me explain work works happen happened".split()),
    "es": set("el los las del y qué cómo por qué es son fue cuál quién para una funcionan funciona ¿cómo ¿qué ¿por".split()),
    "fr": set("le les des du et qui comment pourquoi est sont une quoi quel quelle au fonctionnent fonctionne".split()),
    "de": set("der die das und wie was warum ist sind ein eine von den dem des wer funktionieren funktioniert über im".split()),
    "it": set("il lo gli di della delle e che come perché è sono chi cosa funzionano funziona".split()),
    "pt": set("o os do da dos das que como porque é são um uma quem funcionam funciona".split()),
}


def question_languages(inquiry: str) -> set[str]:
    """The languages the question is most likely written in (empty: no marker word at all)."""
    words = [w.strip(".,;:!?¡¿\"'«»„“”()").lower() for w in inquiry.split()]
    words += [w.lstrip("¡¿") for w in words]
    score = {lang: sum(w in marks for w in words) for lang, marks in _MARKERS.items()}
    best = max(score.values())
    return {lang for lang, s in score.items() if s == best} if best else set()


def _in_language(inquiry: str, language: str) -> bool:
    """Whether the question may be quoted in this language's narration: it is written in it (English
    narration also takes a question with no marker words, as it always has)."""
    found = question_languages(inquiry)
    return language in found if found else language == "en"


def _fill(sentence: str, bridges: list[str], language: str, turn: int, before: bool = False) -> str:
    """The sentence, with short bridge sentences after it (``before``: before it) until it fills about
    pace.TARGET_S of speech."""
    target = pace.TARGET_S * 1000
    for k in range(len(bridges)):
        now = pace.estimate_ms(sentence, language)
        if now >= target - 500:
            break
        bridge = bridges[(turn + k) % len(bridges)]
        longer = f"{bridge} {sentence}" if before else f"{sentence} {bridge}"
        if pace.estimate_ms(longer, language) > target + 300:
            continue
        sentence = longer
    return sentence


_STYLE_WORDS = {
    "photorealistic": "photorealistic, natural light, 50mm lens, high detail",
    "cinematic": "cinematic still, dramatic lighting, shallow depth of field, film grain",
    "illustration": "editorial illustration, clean lines, flat colours",
    "watercolor": "watercolor painting, soft washes, textured paper",
    "anime": "anime style, vibrant colours, expressive composition",
}

_SHOTS = [
    "wide establishing shot of",
    "close-up detail of",
    "group of people experiencing",
    "map-like overview of",
    "symbolic still life about",
]

_CAMERA = [
    "slow push-in",
    "gentle pan from left to right",
    "slow pull-back revealing the scene",
    "steady tracking shot",
    "soft crane shot rising",
]


_FACT_MIN_WORDS = 10  # a fact cut shorter than this after the question is told without the question


def write_script(inquiry: str, n: int, audience: str, language: str, fact: str | None = None) -> dict[str, object]:
    """Title, summary and one narration per segment, all in ``language``. The question (or its topic) is
    used only when it is written in that language; otherwise the text speaks of "this topic" and the
    title quotes the question. Each narration is filled to about pace.TARGET_S of speech. ``fact`` (the
    research's first fact that is not generic) is told where it is heard: segment 1 of a movie of 3 segments
    or more, else in segment 0 after the question (segment 1 of 2 is the closing)."""
    t = _TEXT.get(language, _TEXT["en"])
    question = inquiry.strip().splitlines()[0].strip() if inquiry.strip() else inquiry.strip()
    own = _in_language(inquiry, language)
    topic = topic_of(inquiry) if own else str(t.get("generic", ""))
    fill = {"topic": topic, "Topic": topic[:1].upper() + topic[1:], "n": n, "audience": t["audience"][audience],  # type: ignore[index]
            "question": question}
    beats: list[str] = t["beats"]  # type: ignore[assignment]
    bridges: list[str] = t["bridges"]  # type: ignore[assignment]
    opening = t["open"][audience].format(**fill)  # type: ignore[index]
    lead = opening
    if own and "ask" in t:  # the question quoted, then where the movie goes from there
        lead = str(t["ask"]).format(**fill)
        asked = f"{lead} {t['follow']}"
        both = f"{asked} {opening}"
        opening = both if pace.estimate_ms(both, language) <= pace.TARGET_S * 1000 + 300 else asked
    if fact and n <= 2:  # no middle segment: the question, then the fact, before the closing
        room = pace.target_words(language) - len(lead.split())
        opening = f"{lead} {_cut(fact, room)}" if room >= _FACT_MIN_WORDS else _cut(fact, pace.target_words(language))
    # The opening is filled only with bridges that make sense before anything happened.
    narration = [_fill(opening, [bridges[i] for i in (0, 2, 3)], language, 0)]
    for i in range(1, n - 1):
        beat = _cut(fact, pace.target_words(language)) if fact and i == 1 else beats[(i - 1) % len(beats)].format(**fill)
        narration.append(_fill(beat, bridges, language, i))
    if n > 1:
        narration.append(_fill(str(t["close"]).format(**fill), bridges, language, n - 1, before=True))
    title = t["title"] if own or "title_quoted" not in t else t["title_quoted"]
    return {
        "title": str(title).format(**fill),
        "summary": str(t["summary"]).format(**fill),
        "narration": narration[:n],
    }


def _cast(shot: int, subject: str, look: Mapping[str, Any] | None) -> str:
    """The shot's subject with the look's recurring cast in it, by name: the establishing shot is set in
    the first place, the close-up and group shots show the first character. Without a look, as it was."""
    if not look:
        return subject
    if shot == 0 and look["places"]:
        return f"{look['places'][0]['name']}, where {subject[:1].lower()}{subject[1:]}"
    if shot == 1 and look["characters"]:
        return f"{look['characters'][0]['name']} as {subject[:1].lower()}{subject[1:]}"
    if shot == 2 and look["characters"]:
        return f"{subject}, {look['characters'][0]['name']} among them"
    return subject


def image_prompts(narration: str, summary: str, style: str, m: int, segment: int, look: Mapping[str, Any] | None = None) -> list[str]:
    subject = narration.rstrip(".!?")
    out = []
    for j in range(m):
        shot = (segment + j) % len(_SHOTS)
        out.append(f"{_SHOTS[shot]} {_cast(shot, subject, look)}; {_STYLE_WORDS[style]}; context: {summary}")
    return out


def video_direction(narration: str, style: str, segment: int, look: Mapping[str, Any] | None = None) -> str:
    subject = _cast(segment % len(_SHOTS), narration.rstrip(".!?"), look)
    return f"{_CAMERA[segment % len(_CAMERA)]} over a scene showing: {subject}; {_STYLE_WORDS[style]}"


def starting_image_prompt(narration: str, summary: str, style: str, segment: int, look: Mapping[str, Any] | None = None) -> str:
    shot = segment % len(_SHOTS)
    return f"opening frame, {_SHOTS[shot]} {_cast(shot, narration.rstrip('.!?'), look)}; {_STYLE_WORDS[style]}; context: {summary}"


# The look per style. The first two hex colours of a palette are the offline painter's dark and light
# (the same two it uses for the style without a look), so every picture of a movie shares them.
_LOOKS = {
    "photorealistic": ("slate blue #2e4053, stone #aaa08c, moss #5b6b4a, linen #ece6da",
                       "soft overcast daylight from the side, gentle shadows",
                       "50mm lens at eye level, steady framing, slow dolly moves"),
    "cinematic": ("midnight navy #0c1426, ember orange #d67836, teal shadow #1f4e5a, warm ivory #f2e8d5",
                  "low golden light from one side with deep teal shadows",
                  "anamorphic 35mm, low angles, slow push-ins, shallow depth of field"),
    "illustration": ("teal #2196a0, sunflower #fadc78, coral #f07c5c, cream #fbf5e6",
                     "flat even light, no cast shadows",
                     "straight-on framing, centred subjects, clean negative space"),
    "watercolor": ("sky wash #78a0c8, sand #f0e1d2, sage #9bb39a, rose #d9a5a0",
                   "diffuse morning light, soft edges",
                   "wide, airy compositions at eye level, gentle pans"),
    "anime": ("violet #5028a0, sakura pink #ff8cb4, electric blue #3ab0ff, white #fafafa",
              "bright rim light with a glowing sky",
              "dynamic low angles, dramatic close-ups, fast pans"),
}


def look(topic: str, style: str) -> dict[str, object]:
    palette, lighting, camera = _LOOKS[style]
    return {
        "palette": palette,
        "lighting": lighting,
        "camera": camera,
        "characters": [{"name": "The Witness", "description": (
            f"a woman in her thirties who lived through {topic}: short dark hair, a weathered ochre coat, a brass "
            "pocket watch on a chain")}],
        "places": [{"name": "The Crossroads", "description": (
            "a small town square around a stone well and an old oak, cobblestones, low brick houses")}],
    }


def music_prompt(title: str, summary: str, audience: str, seconds: int) -> str:
    mood = {
        "children": "playful, warm and curious",
        "general": "calm, hopeful and documentary-like",
        "students": "focused, steady and unobtrusive",
        "experts": "understated, thoughtful and minimal",
    }[audience]
    return f"{seconds} s instrumental underscore for '{title}': {mood}; soft piano and strings, no vocals, leaves room for narration"


# Research (the ResearchProducer offline). Kept apart from the writer above: it reads only the question and
# the user's own sources, and says plainly that it is generic (the offline provider knows no facts).
_GENERIC_FACTS = [
    "Generic outline, not researched offline: the question asked is {inquiry!r}.",
    "Generic outline, not researched offline: where and when {topic} began, and the world around it.",
    "Generic outline, not researched offline: the turning point that changed the direction of {topic}.",
    "Generic outline, not researched offline: the people who shaped {topic} and the choices they made.",
    "Generic outline, not researched offline: how {topic} changed daily life.",
    "Generic outline, not researched offline: why {topic} still matters today.",
]
_SENTENCE = re.compile(r"[^.!?]+[.!?]?")
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+){1,2})\b")


def _sentences(text: str) -> list[str]:
    return [s for s in (" ".join(m.group(0).split()) for m in _SENTENCE.finditer(text)) if len(s.split()) >= 3]


def _cut(text: str, words: int) -> str:
    parts = text.split()
    return text if len(parts) <= words else " ".join(parts[:words]).rstrip(",;:") + "..."


def research(inquiry: str, sources: list[str], max_facts: int) -> dict[str, object]:
    """A deterministic research: up to two facts from each source the user pasted (its first sentences, cited
    by number), the years and names they mention; URLs cited as references (never fetched); generic outline
    points from the question fill the rest, each saying it is not researched."""
    topic = topic_of(inquiry)
    facts: list[dict[str, object]] = []
    dates: list[dict[str, str]] = []
    names: list[dict[str, str]] = []
    references: list[dict[str, str]] = []
    for n, source in enumerate(sources, start=1):
        if source_kind(source) == "url":
            references.append({"title": f"Source {n} (given by the user; not read offline)", "url": source})
            continue
        for sentence in _sentences(source)[:2]:
            facts.append({"text": _cut(sentence, 40), "source": n})
            dates += [{"date": year, "event": _cut(sentence, 20)} for year in _YEAR.findall(sentence)]
        for name in dict.fromkeys(_NAME.findall(source)):
            names.append({"name": name, "role": f"named in source {n}"})
    facts = facts[:max_facts]
    fill = {"inquiry": inquiry, "topic": topic}
    facts += [{"text": t.format(**fill), "source": 0} for t in _GENERIC_FACTS[: max(0, min(len(_GENERIC_FACTS), max_facts - len(facts)))]]
    grounded = sum(1 for f in facts if f["source"])
    summary = (f"Offline research about {topic}: {grounded} fact(s) from the sources you pasted; the rest is a "
               "generic outline, not researched." if grounded else
               f"Offline research about {topic}: a generic outline from the question, not researched (route the "
               "ResearchProducer to an LLM, or paste sources, for real facts).")
    return {"summary": summary, "facts": facts, "dates": dates[:20], "names": names[:20], "references": references}


def first_fact(research_value: Mapping[str, Any] | None) -> str | None:
    """The fact the offline script tells: the research's first fact that is not generic (from a source the
    user pasted, or a fact the user wrote); None: only generic facts, or no research."""
    if not research_value:
        return None
    return next((str(f["text"]) for f in research_value["facts"] if f.get("source") or f.get("edited")), None)
