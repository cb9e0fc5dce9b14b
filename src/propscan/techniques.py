"""The technique inventory: one source of truth for ids, names, definitions, examples and colours.

Ids are the SemEval-2020 Task 11 label strings, so FLC/TC files round-trip unchanged.
Definitions paraphrase the PTC annotation guidelines; the examples are our own writing.
Colours come from the Okabe-Ito and Paul Tol palettes (colour-blind safe); with 14 classes some pairs
are close, so the report also shows the technique name on focus and in the legend.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Technique:
    id: str  # the SemEval-2020 label, e.g. "Name_Calling,Labeling"
    name: str  # human-readable name
    definition: str
    example: str
    colour: str  # hex, for reports


TECHNIQUES: tuple[Technique, ...] = (
    Technique(
        "Loaded_Language",
        "Loaded language",
        "Words or phrases with strong emotional implications, used to sway the reader rather than inform.",
        "The council's reckless, shameful vote will gut our schools.",
        "#E69F00",
    ),
    Technique(
        "Name_Calling,Labeling",
        "Name calling / labelling",
        "Labelling a person or group as something the audience fears, hates or admires, instead of arguing.",
        "The so-called experts from the ivory tower want to tell you how to live.",
        "#D55E00",
    ),
    Technique(
        "Repetition",
        "Repetition",
        "Repeating the same word, phrase or message so often that the audience comes to accept it.",
        "It is a tax grab. A tax grab on families. Nothing but a tax grab.",
        "#CC79A7",
    ),
    Technique(
        "Exaggeration,Minimisation",
        "Exaggeration / minimisation",
        "Representing something as far better or worse than it is, or playing down its importance.",
        "This is the worst crisis any town has ever faced; the leak was just a few drops.",
        "#0072B2",
    ),
    Technique(
        "Doubt",
        "Doubt",
        "Questioning the credibility of someone or something without evidence, to undermine trust.",
        "Can we really believe a mayor who has changed his story twice?",
        "#56B4E9",
    ),
    Technique(
        "Appeal_to_fear-prejudice",
        "Appeal to fear / prejudice",
        "Building support for an idea by stoking anxiety or panic about an alternative, often drawing on prejudice.",
        "If the bridge plan passes, our streets will never be safe for our children again.",
        "#009E73",
    ),
    Technique(
        "Flag-Waving",
        "Flag-waving",
        "Playing on strong national or group feeling to justify or promote an action or idea.",
        "Every true patriot knows this is what our nation stands for.",
        "#F0E442",
    ),
    Technique(
        "Causal_Oversimplification",
        "Causal oversimplification",
        "Assuming a single cause or reason when an issue has several.",
        "Prices went up the week the new mayor took office, so the mayor caused inflation.",
        "#882255",
    ),
    Technique(
        "Slogans",
        "Slogans",
        "A brief, striking phrase, often with labelling or stereotyping, that works as an emotional appeal.",
        "Clean streets, safe streets!",
        "#44AA99",
    ),
    Technique(
        "Appeal_to_Authority",
        "Appeal to authority",
        "Stating that a claim is true because an authority or expert said so, with no other evidence.",
        "A famous surgeon says the diet works, so it must work.",
        "#332288",
    ),
    Technique(
        "Black-and-White_Fallacy",
        "Black-and-white fallacy",
        "Presenting two alternatives as the only possibilities when more exist; in its extreme, dictating a single choice.",
        "Either you support the new stadium or you hate this city.",
        "#999933",
    ),
    Technique(
        "Thought-terminating_Cliches",
        "Thought-terminating cliché",
        "A short, generic phrase that discourages critical thought and ends the discussion.",
        "It is what it is. Rules are rules.",
        "#AA4499",
    ),
    Technique(
        "Whataboutism,Straw_Men,Red_Herring",
        "Whataboutism / straw man / red herring",
        "Discrediting a position by charging hypocrisy, misrepresenting it, or bringing in irrelevant material.",
        "Why worry about the river pollution when the other party once littered at a rally?",
        "#117733",
    ),
    Technique(
        "Bandwagon,Reductio_ad_hitlerum",
        "Bandwagon / reductio ad Hitlerum",
        "Urging people to join because 'everyone' does, or rejecting an idea because a hated group supports it.",
        "Everyone in town is signing up; only cranks are still against it.",
        "#661100",
    ),
)

TECHNIQUE_IDS: tuple[str, ...] = tuple(t.id for t in TECHNIQUES)
BY_ID: dict[str, Technique] = {t.id: t for t in TECHNIQUES}

# Original 18 PTC (EMNLP 2019) names and SemEval-2023 Task 3 / 2021 Task 6 / 2024 Task 4 names -> our ids.
# Techniques with no counterpart in our inventory (e.g. Obfuscation, Smears, Transfer) map to None.
ALIASES: dict[str, str | None] = {
    # PTC 2019 (18 techniques)
    "Appeal_to_Authority": "Appeal_to_Authority",
    "Appeal_to_fear-prejudice": "Appeal_to_fear-prejudice",
    "Bandwagon": "Bandwagon,Reductio_ad_hitlerum",
    "Black-and-White_Fallacy": "Black-and-White_Fallacy",
    "Causal_Oversimplification": "Causal_Oversimplification",
    "Doubt": "Doubt",
    "Exaggeration,Minimisation": "Exaggeration,Minimisation",
    "Flag-Waving": "Flag-Waving",
    "Loaded_Language": "Loaded_Language",
    "Name_Calling,Labeling": "Name_Calling,Labeling",
    "Obfuscation,Intentional_Vagueness,Confusion": None,
    "Red_Herring": "Whataboutism,Straw_Men,Red_Herring",
    "Reductio_ad_hitlerum": "Bandwagon,Reductio_ad_hitlerum",
    "Repetition": "Repetition",
    "Slogans": "Slogans",
    "Straw_Men": "Whataboutism,Straw_Men,Red_Herring",
    "Thought-terminating_Cliches": "Thought-terminating_Cliches",
    "Whataboutism": "Whataboutism,Straw_Men,Red_Herring",
    # SemEval-2023 Task 3 (subtask 3)
    "Appeal_to_Fear-Prejudice": "Appeal_to_fear-prejudice",
    "Appeal_to_Hypocrisy": "Whataboutism,Straw_Men,Red_Herring",
    "Appeal_to_Popularity": "Bandwagon,Reductio_ad_hitlerum",
    "Appeal_to_Time": None,
    "Appeal_to_Values": None,
    "Consequential_Oversimplification": "Causal_Oversimplification",
    "Conversation_Killer": "Thought-terminating_Cliches",
    "False_Dilemma-No_Choice": "Black-and-White_Fallacy",
    "Guilt_by_Association": "Bandwagon,Reductio_ad_hitlerum",
    "Obfuscation-Vagueness-Confusion": None,
    "Questioning_the_Reputation": "Doubt",
    "Red_Herring-2023": "Whataboutism,Straw_Men,Red_Herring",
    "Straw_Man": "Whataboutism,Straw_Men,Red_Herring",
    # SemEval-2021 Task 6 / 2024 Task 4 (meme) names
    "Loaded Language": "Loaded_Language",
    "Name calling/Labeling": "Name_Calling,Labeling",
    "Smears": None,
    "Exaggeration/Minimisation": "Exaggeration,Minimisation",
    "Appeal to fear/prejudice": "Appeal_to_fear-prejudice",
    "Glittering generalities (Virtue)": None,
    "Flag-waving": "Flag-Waving",
    "Thought-terminating cliché": "Thought-terminating_Cliches",
    "Misrepresentation of Someone's Position (Straw Man)": "Whataboutism,Straw_Men,Red_Herring",
    "Black-and-white Fallacy/Dictatorship": "Black-and-White_Fallacy",
    "Appeal to authority": "Appeal_to_Authority",
    "Reductio ad hitlerum": "Bandwagon,Reductio_ad_hitlerum",
    "Obfuscation, Intentional vagueness, Confusion": None,
    "Presenting Irrelevant Data (Red Herring)": "Whataboutism,Straw_Men,Red_Herring",
    "Causal Oversimplification": "Causal_Oversimplification",
    "Transfer": None,
    "Appeal to (Strong) Emotions": None,
    "Straw Man": "Whataboutism,Straw_Men,Red_Herring",
    "Red Herring": "Whataboutism,Straw_Men,Red_Herring",
    "Obfuscation": None,
}
# the 2023 Red_Herring label is spelled like the 2019 one; keep a single key
del ALIASES["Red_Herring-2023"]
for _t in TECHNIQUE_IDS:  # every id maps to itself, and the meme names are case-insensitive above
    ALIASES.setdefault(_t, _t)


# Plain words for how often a technique's highlights are right (its FLC precision on PTC dev, which
# gives partial credit for partial overlap), so a reader can tell a weak hint from a strong one:
# "right about 3 in 10", the precision in tenths, as the README reads a confidence. Not "often" or
# "usually right": the best techniques score 0.3-0.4, which such words overstate. Below RARELY the
# tenths would say "about 0 in 10", so the words say "rarely right" (our choice, not tuned).
RARELY = 0.05


# Below this many highlights a precision says little (at 20, one standard error of a precision of 0.2
# is 0.09, about one tenth), so no rate is named. Our choice, not tuned.
MIN_JUDGED = 20


def reliability(precision: float, n_pred: int | None = None) -> str:
    """``right about 3 in 10 (precision 0.29)``, ``rarely right (precision 0.03)``; ``too few to judge
    (4 highlights, precision 0.33)`` when the precision comes from fewer than MIN_JUDGED highlights."""
    if n_pred is not None and n_pred < MIN_JUDGED:
        return f"too few to judge ({n_pred} highlight{'s' if n_pred != 1 else ''}, precision {precision:.2f})"
    precision = round(precision, 2)  # the words follow the figure shown beside them
    if precision < RARELY:
        words = "rarely right"
    elif precision >= 0.95:
        words = "almost always right"
    else:
        words = f"right about {int(precision * 10 + 0.5)} in 10"
    return f"{words} (precision {precision:.2f})"


class UnknownTechnique(ValueError):
    pass


def normalise(name: str) -> str | None:
    """Map any known technique name (ours, PTC-2019, SemEval-2021/2023/2024) onto our id.

    Returns None for techniques outside our inventory; raises UnknownTechnique for unknown names.
    """
    name = name.strip()
    if name in ALIASES:
        return ALIASES[name]
    lowered = {k.lower(): v for k, v in ALIASES.items()}
    if name.lower() in lowered:
        return lowered[name.lower()]
    raise UnknownTechnique(f"unknown technique {name!r}")


def resolve(name: str) -> str:
    """A technique id from its id, its display name or any alias (case-insensitive); ValueError naming
    the valid ids otherwise."""
    wanted = name.strip().lower()
    for t in TECHNIQUES:
        if wanted in (t.id.lower(), t.name.lower()):
            return t.id
    try:
        found = normalise(name)
    except UnknownTechnique:
        found = None
    if found is None:
        raise ValueError(f"unknown technique {name.strip()!r}; valid names: {', '.join(TECHNIQUE_IDS)}")
    return found


def parse_cutoffs(items: list[str]) -> dict[str, float]:
    """``["Slogans=0.2", ...]`` -> ``{"Slogans": 0.2}``: per-technique minimum confidences.

    Raises ValueError with a one-line message for a missing ``=``, an unknown technique or a value
    outside [0, 1].
    """
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not TECHNIQUE=VALUE (for example Slogans=0.2)")
        tech = resolve(name)
        out[tech] = check_confidence(value, f"the value for {tech}")
    return out


def check_confidence(value: str | float, what: str = "the minimum confidence") -> float:
    """A number in [0, 1], or ValueError saying what is wrong with it."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not 0.0 <= v <= 1.0:  # also rejects nan
        raise ValueError(f"{what} {v:g} is outside 0..1")
    return v
