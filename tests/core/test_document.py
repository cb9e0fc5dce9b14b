"""Tests for propscan.document: Analysis.to_dict against the shipped JSON Schema, and round-trips."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

import propscan
from propscan.document import (
    SCHEMA_ID,
    SCHEMA_VERSION,
    Analysis,
    Document,
    ModelInfo,
    SentenceScore,
    Span,
)
from propscan.techniques import TECHNIQUE_IDS

SCHEMA_PATH = Path(propscan.__file__).resolve().parent / "schema" / "analysis.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _span(doc: Document, needle: str, technique: str, score: float, alts=None) -> Span:
    start = doc.text.index(needle)
    return Span(start, start + len(needle), technique, score, dict(alts or {}))


# Non-ASCII text: accents, emoji (astral plane: 1 code point, 2 UTF-16 units, 4 UTF-8 bytes),
# CJK, curly quotes and a CRLF, so any byte/UTF-16 offset confusion shows up.
TEXT = (
    "Le maire a été «\u00a0irresponsable\u00a0» 😡😡 — a reckless, shameful vote!\r\n"
    "这是一个可耻的决定。 “Everyone is signing up,” they say. Clean streets, safe streets! 🇫🇷 Naïve café."
)


def make_analysis(threshold: float | None = None) -> Analysis:
    doc = Document("doc-é😀", TEXT, {"source": "test", "url": "https://example.invalid/a", "n": 3, "tags": ["x"]})
    spans = [
        _span(doc, "irresponsable", "Name_Calling,Labeling", 0.8125, {"Name_Calling,Labeling": 0.8125, "Loaded_Language": 0.125}),
        _span(doc, "reckless, shameful", "Loaded_Language", 0.5),
        _span(doc, "可耻的", "Loaded_Language", 0.25, {"Loaded_Language": 0.75}),
        _span(doc, "“Everyone is signing up,”", "Bandwagon,Reductio_ad_hitlerum", 0.375),
        _span(doc, "Clean streets, safe streets!", "Slogans", 1.0),
        _span(doc, "café", "Repetition", 0.0),
    ]
    first_end = TEXT.index("\r\n") + 2
    sentences = [SentenceScore(0, first_end, 0.9), SentenceScore(first_end, len(TEXT), 0.0625)]
    return Analysis(doc, spans, sentences, 0.6875, ModelInfo("propscan-minilm", "1.2.3"), threshold)


# ---------------------------------------------------------------- the schema file itself


def test_schema_is_valid_draft_2020_12(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID


def test_schema_technique_enum_matches_inventory(schema):
    assert schema["$defs"]["technique"]["enum"] == list(TECHNIQUE_IDS)


def _walk_properties(node, path="$"):
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}.{name}", sub
        for key, sub in node.items():
            yield from _walk_properties(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _walk_properties(sub, f"{path}[{i}]")


def test_schema_every_field_is_described(schema):
    props = list(_walk_properties(schema))
    assert len(props) >= 20
    missing = [p for p, sub in props if not sub.get("description")]
    assert not missing, missing
    for name, sub in schema["$defs"].items():
        assert sub.get("description"), name


def test_schema_covers_exactly_what_to_dict_emits(schema):
    d = make_analysis().to_dict()
    assert set(schema["properties"]) == set(d) == set(schema["required"])
    assert set(schema["properties"]["document"]["properties"]) == set(d["document"])
    assert set(schema["properties"]["model"]["properties"]) == set(d["model"])
    assert set(schema["$defs"]["span"]["properties"]) == set(d["spans"][0])
    assert set(schema["$defs"]["sentence"]["properties"]) == set(d["sentences"][0])


# ---------------------------------------------------------------- to_dict validates


@pytest.mark.parametrize("threshold", [None, 0.0, 0.35, 1.0])
def test_to_dict_validates(validator, threshold):
    a = make_analysis(threshold)
    d = a.to_dict()
    validator.validate(d)
    assert d["schema"] == SCHEMA_ID
    assert d["schema_version"] == SCHEMA_VERSION == "1.2"
    assert d["threshold"] == threshold
    # and through JSON text, as a user would read it
    validator.validate(json.loads(a.to_json()))
    validator.validate(json.loads(a.to_json(indent=None)))


def test_empty_analysis_validates(validator):
    a = Analysis(Document("empty", ""), [], [], 0.0, ModelInfo("m", "0"))
    d = a.to_dict()
    validator.validate(d)
    assert d["counts"] == {} and d["spans"] == [] and d["sentences"] == []
    assert d["document"]["metadata"] == {}


def test_every_technique_validates(validator):
    text = "x" * 20
    doc = Document("all", text)
    spans = [Span(i, i + 1, t, 0.5, {t: 0.5}) for i, t in enumerate(TECHNIQUE_IDS)]
    a = Analysis(doc, spans, [SentenceScore(0, 20, 0.5)], 0.5, ModelInfo("m", "0"))
    d = a.to_dict()
    validator.validate(d)
    assert d["counts"] == {t: 1 for t in TECHNIQUE_IDS}


def test_to_json_keeps_non_ascii_literal():
    js = make_analysis().to_json()
    assert "😡" in js and "可耻的" in js and "café" in js
    assert "\\u" not in js


def test_scores_are_rounded_to_4_decimals(validator):
    a = make_analysis()
    a.score = 0.123456789
    a.spans[0].score = 0.99999999
    a.spans[0].alternatives = {"Doubt": 0.000049}
    a.sentences[0].score = 1 / 3
    d = a.to_dict()
    validator.validate(d)
    assert d["score"] == 0.1235
    assert d["spans"][0]["score"] == 1.0
    assert d["spans"][0]["alternatives"] == {"Doubt": 0.0}
    assert d["sentences"][0]["score"] == 0.3333


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("threshold", [None, 0.35])
def test_round_trip(threshold):
    a = make_analysis(threshold)
    b = Analysis.from_dict(a.to_dict())
    assert b == a
    assert b.to_dict() == a.to_dict()


def test_round_trip_through_json():
    a = make_analysis()
    assert Analysis.from_dict(json.loads(a.to_json())) == a


def test_from_dict_does_not_need_counts_or_span_text():
    d = make_analysis().to_dict()
    del d["counts"]
    for s in d["spans"]:
        del s["text"]
    assert Analysis.from_dict(d) == make_analysis()


@pytest.mark.parametrize("version", ["2.0", "0.9", "1", 1.0, None])
def test_from_dict_rejects_unknown_schema_version(version):
    d = make_analysis().to_dict()
    d["schema_version"] = version
    with pytest.raises(ValueError, match="schema_version"):
        Analysis.from_dict(d)


def test_from_dict_rejects_missing_schema_version():
    d = make_analysis().to_dict()
    del d["schema_version"]
    with pytest.raises(ValueError, match="schema_version"):
        Analysis.from_dict(d)


# ---------------------------------------------------------------- offsets are code points


def test_span_text_is_document_slice_code_points():
    a = make_analysis()
    d = a.to_dict()
    text = d["document"]["text"]
    expected = [
        "irresponsable",
        "reckless, shameful",
        "可耻的",
        "“Everyone is signing up,”",
        "Clean streets, safe streets!",
        "café",
    ]
    assert [s["text"] for s in d["spans"]] == expected
    for s, span in zip(d["spans"], a.spans):
        assert s["text"] == text[s["start"] : s["end"]] == span.text_in(a.document)
        assert s["end"] - s["start"] == len(s["text"])  # code points, not bytes or UTF-16 units
    # the emoji before the spans would shift byte or UTF-16 offsets
    assert TEXT.index("可耻的") != TEXT.encode("utf-8").index("可耻的".encode("utf-8"))
    assert TEXT.index("可耻的") != len(TEXT[: TEXT.index("可耻的")].encode("utf-16-le")) // 2


def test_span_text_with_emoji_inside():
    doc = Document("e", "Wow 😡😡 this 👨‍👩‍👧 is awful")
    s = Span(4, 6, "Repetition", 0.5)
    fam = doc.text.index("👨‍👩‍👧")
    s2 = Span(fam, fam + len("👨‍👩‍👧"), "Loaded_Language", 0.5)
    a = Analysis(doc, [s, s2], [], 0.5, ModelInfo("m", "0"))
    d = a.to_dict()
    assert d["spans"][0]["text"] == "😡😡"
    assert d["spans"][1]["text"] == "👨‍👩‍👧"
    assert d["spans"][1]["end"] - d["spans"][1]["start"] == 5  # ZWJ sequence = 5 code points


# ---------------------------------------------------------------- counts


def test_counts_property():
    a = make_analysis()
    assert a.counts == {
        "Loaded_Language": 2,
        "Name_Calling,Labeling": 1,
        "Repetition": 1,
        "Slogans": 1,
        "Bandwagon,Reductio_ad_hitlerum": 1,
    }
    # keys in inventory order, zero counts omitted
    assert list(a.counts) == [t for t in TECHNIQUE_IDS if t in a.counts]
    assert a.to_dict()["counts"] == a.counts
    assert Analysis(Document("e", ""), [], [], 0.0, ModelInfo("m", "0")).counts == {}


# ---------------------------------------------------------------- the schema rejects bad output


def _errors(validator, d) -> list:
    return list(validator.iter_errors(d))


def test_schema_rejects_bad_technique(validator):
    d = make_analysis().to_dict()
    d["spans"][0]["technique"] = "Propaganda"
    assert _errors(validator, d)
    d = make_analysis().to_dict()
    d["spans"][0]["technique"] = "loaded_language"  # ids are case-sensitive
    assert _errors(validator, d)
    d = make_analysis().to_dict()
    d["counts"]["Bogus"] = 1
    assert _errors(validator, d)
    d = make_analysis().to_dict()
    d["spans"][0]["alternatives"]["Bogus"] = 0.1
    assert _errors(validator, d)


@pytest.mark.parametrize(
    "where",
    ["score", "threshold", "span", "alternative", "sentence"],
)
@pytest.mark.parametrize("value", [1.5, -0.1])
def test_schema_rejects_score_out_of_range(validator, where, value):
    d = make_analysis(0.5).to_dict()
    if where == "score":
        d["score"] = value
    elif where == "threshold":
        d["threshold"] = value
    elif where == "span":
        d["spans"][0]["score"] = value
    elif where == "alternative":
        d["spans"][0]["alternatives"]["Loaded_Language"] = value
    else:
        d["sentences"][0]["score"] = value
    assert _errors(validator, d)


@pytest.mark.parametrize("field", ["start", "end"])
@pytest.mark.parametrize("value", [-1, 1.5, "3", None])
def test_schema_rejects_bad_offsets(validator, field, value):
    d = make_analysis().to_dict()
    d["spans"][0][field] = value
    assert _errors(validator, d)
    d = make_analysis().to_dict()
    d["sentences"][0][field] = value
    assert _errors(validator, d)


def test_schema_rejects_unknown_and_missing_fields(validator):
    base = make_analysis().to_dict()
    for mutate in (
        lambda d: d.__setitem__("extra", 1),
        lambda d: d["spans"][0].__setitem__("label", "x"),
        lambda d: d["sentences"][0].__setitem__("label", "x"),
        lambda d: d["model"].__setitem__("path", "/tmp"),
        lambda d: d["document"].__setitem__("lang", "en"),
        lambda d: d.__delitem__("spans"),
        lambda d: d["spans"][0].__delitem__("text"),
        lambda d: d["document"].__delitem__("text"),
        lambda d: d.__setitem__("schema_version", "2.0"),
        lambda d: d.__setitem__("schema", "https://example.invalid/other"),
        lambda d: d["counts"].__setitem__("Doubt", 0),
        lambda d: d["document"].__setitem__("metadata", []),
    ):
        d = copy.deepcopy(base)
        mutate(d)
        assert _errors(validator, d), d


def test_schema_metadata_is_free_form(validator):
    d = make_analysis().to_dict()
    d["document"]["metadata"] = {"anything": {"nested": [1, None, "ü"]}, "x-custom": True}
    validator.validate(d)
