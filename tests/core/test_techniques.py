"""Tests for propscan.techniques: the inventory and the name normaliser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from propscan.techniques import ALIASES, BY_ID, TECHNIQUE_IDS, TECHNIQUES, UnknownTechnique, normalise

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
PTC_TRAIN_LABELS = DATA / "ptc" / "train" / "train-task-flc-tc.labels"
SEMEVAL2021_TRAIN = DATA / "semeval2021t6" / "train" / "training_set_task2.txt"
SEMEVAL2024_TRAIN = DATA / "semeval2024t4" / "train" / "subtask2a_train.json"

HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")

# The SemEval-2020 Task 11 TC label set, written out so the test works without the data.
SEMEVAL2020_LABELS = {
    "Appeal_to_Authority",
    "Appeal_to_fear-prejudice",
    "Bandwagon,Reductio_ad_hitlerum",
    "Black-and-White_Fallacy",
    "Causal_Oversimplification",
    "Doubt",
    "Exaggeration,Minimisation",
    "Flag-Waving",
    "Loaded_Language",
    "Name_Calling,Labeling",
    "Repetition",
    "Slogans",
    "Thought-terminating_Cliches",
    "Whataboutism,Straw_Men,Red_Herring",
}


# ---------------------------------------------------------------- the inventory


def test_fourteen_unique_ids():
    assert len(TECHNIQUES) == 14
    assert len(TECHNIQUE_IDS) == 14
    assert len(set(TECHNIQUE_IDS)) == 14
    assert TECHNIQUE_IDS == tuple(t.id for t in TECHNIQUES)
    assert set(BY_ID) == set(TECHNIQUE_IDS)
    assert all(BY_ID[t.id] is t for t in TECHNIQUES)


def test_ids_are_the_semeval2020_label_set():
    assert set(TECHNIQUE_IDS) == SEMEVAL2020_LABELS


@pytest.mark.skipif(not PTC_TRAIN_LABELS.exists(), reason=f"{PTC_TRAIN_LABELS} not present")
def test_ids_match_ptc_train_labels():
    used = set()
    for line in PTC_TRAIN_LABELS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            used.add(line.split("\t")[1])
    assert used == set(TECHNIQUE_IDS)


@pytest.mark.parametrize("t", TECHNIQUES, ids=lambda t: t.id)
def test_technique_has_text_and_colour(t):
    for field in (t.id, t.name, t.definition, t.example):
        assert isinstance(field, str) and field.strip() == field and field
    assert len(t.definition) > 20
    assert len(t.example) > 5
    assert HEX.match(t.colour), t.colour


def test_colours_distinct():
    colours = [t.colour.upper() for t in TECHNIQUES]
    assert len(set(colours)) == len(colours)


def test_names_distinct():
    names = [t.name.lower() for t in TECHNIQUES]
    assert len(set(names)) == len(names)


def test_techniques_are_frozen():
    with pytest.raises(AttributeError):
        TECHNIQUES[0].colour = "#000000"  # type: ignore[misc]


# ---------------------------------------------------------------- normalise


@pytest.mark.parametrize("tid", TECHNIQUE_IDS)
def test_ids_normalise_to_themselves(tid):
    assert normalise(tid) == tid
    assert normalise(f"  {tid}\n") == tid


def test_every_alias_target_is_an_id_or_none():
    for name, target in ALIASES.items():
        assert target is None or target in TECHNIQUE_IDS, name
        assert normalise(name) == target


@pytest.mark.parametrize(
    "name, expected",
    [
        # PTC 2019 (18 techniques)
        ("Bandwagon", "Bandwagon,Reductio_ad_hitlerum"),
        ("Reductio_ad_hitlerum", "Bandwagon,Reductio_ad_hitlerum"),
        ("Straw_Men", "Whataboutism,Straw_Men,Red_Herring"),
        ("Whataboutism", "Whataboutism,Straw_Men,Red_Herring"),
        ("Red_Herring", "Whataboutism,Straw_Men,Red_Herring"),
        ("Obfuscation,Intentional_Vagueness,Confusion", None),
        ("Loaded_Language", "Loaded_Language"),
        ("Appeal_to_fear-prejudice", "Appeal_to_fear-prejudice"),
        # SemEval-2021 Task 6 / 2024 Task 4 meme names
        ("Loaded Language", "Loaded_Language"),
        ("Smears", None),
        ("Transfer", None),
        ("Glittering generalities (Virtue)", None),
        ("Name calling/Labeling", "Name_Calling,Labeling"),
        ("Exaggeration/Minimisation", "Exaggeration,Minimisation"),
        ("Appeal to fear/prejudice", "Appeal_to_fear-prejudice"),
        ("Flag-waving", "Flag-Waving"),
        ("Thought-terminating cliché", "Thought-terminating_Cliches"),
        ("Black-and-white Fallacy/Dictatorship", "Black-and-White_Fallacy"),
        ("Misrepresentation of Someone's Position (Straw Man)", "Whataboutism,Straw_Men,Red_Herring"),
        ("Presenting Irrelevant Data (Red Herring)", "Whataboutism,Straw_Men,Red_Herring"),
        ("Obfuscation, Intentional vagueness, Confusion", None),
        ("Appeal to authority", "Appeal_to_Authority"),
        ("Reductio ad hitlerum", "Bandwagon,Reductio_ad_hitlerum"),
        # SemEval-2023 Task 3
        ("False_Dilemma-No_Choice", "Black-and-White_Fallacy"),
        ("Conversation_Killer", "Thought-terminating_Cliches"),
        ("Appeal_to_Fear-Prejudice", "Appeal_to_fear-prejudice"),
        ("Appeal_to_Popularity", "Bandwagon,Reductio_ad_hitlerum"),
        ("Appeal_to_Hypocrisy", "Whataboutism,Straw_Men,Red_Herring"),
        ("Consequential_Oversimplification", "Causal_Oversimplification"),
        ("Questioning_the_Reputation", "Doubt"),
        ("Guilt_by_Association", "Bandwagon,Reductio_ad_hitlerum"),
        ("Straw_Man", "Whataboutism,Straw_Men,Red_Herring"),
        ("Appeal_to_Values", None),
        ("Appeal_to_Time", None),
        ("Obfuscation-Vagueness-Confusion", None),
    ],
)
def test_normalise_known_names(name, expected):
    assert normalise(name) == expected


@pytest.mark.parametrize(
    "name, expected",
    [
        ("loaded language", "Loaded_Language"),
        ("LOADED_LANGUAGE", "Loaded_Language"),
        ("flag-WAVING", "Flag-Waving"),
        ("  Smears  ", None),
        ("smears", None),
        ("false_dilemma-no_choice", "Black-and-White_Fallacy"),
    ],
)
def test_normalise_is_case_and_space_insensitive(name, expected):
    assert normalise(name) == expected


@pytest.mark.parametrize("name", ["Propaganda", "", "   ", "Loaded", "Loaded_Language,Doubt", "Red_Herring-2023"])
def test_normalise_unknown_raises(name):
    with pytest.raises(UnknownTechnique):
        normalise(name)


def test_unknown_technique_is_a_value_error():
    assert issubclass(UnknownTechnique, ValueError)
    with pytest.raises(ValueError, match="Propaganda"):
        normalise("Propaganda")


# ---------------------------------------------------------------- every name in the other data sets


def _assert_all_normalise(names: set[str]) -> None:
    assert names
    bad = []
    for n in sorted(names):
        try:
            normalise(n)
        except UnknownTechnique:
            bad.append(n)
    assert not bad, f"names missing from techniques.ALIASES: {bad}"


@pytest.mark.skipif(not SEMEVAL2021_TRAIN.exists(), reason=f"{SEMEVAL2021_TRAIN} not present")
def test_semeval2021_task6_names_normalise():
    data = json.loads(SEMEVAL2021_TRAIN.read_text(encoding="utf-8"))
    names = {lab["technique"] for item in data for lab in item["labels"]}
    _assert_all_normalise(names)
    # most of the 20 meme techniques have a counterpart in our inventory
    mapped = {normalise(n) for n in names} - {None}
    assert len(mapped) >= 12


@pytest.mark.skipif(not SEMEVAL2024_TRAIN.exists(), reason=f"{SEMEVAL2024_TRAIN} not present")
def test_semeval2024_task4_names_normalise():
    data = json.loads(SEMEVAL2024_TRAIN.read_text(encoding="utf-8"))
    names = {lab for item in data for lab in item["labels"]}
    _assert_all_normalise(names)
    mapped = {normalise(n) for n in names} - {None}
    assert len(mapped) >= 12
