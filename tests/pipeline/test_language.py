"""Language identification: every analysis records its text's language, and a text in another
language is analysed with a warning in every output (or skipped with --skip-non-english)."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from propscan.pipeline.analyze import analyze
from propscan.document import Document
from propscan.pipeline.language import MIN_CHARS, identify

# our own writing, one paragraph each
TEXTS = {
    "ru": "Правительство снова обмануло народ, и предатели у власти уничтожают нашу великую страну. "
          "Эти так называемые эксперты лгут вам каждый день, а Запад всегда будет ненавидеть нашу нацию.",
    "de": "Die Regierung hat das Volk wieder belogen, und die Verräter an der Macht zerstören unser großes Land. "
          "Diese sogenannten Experten lügen Sie jeden Tag an, und niemand in Berlin will es hören.",
    "fr": "Le gouvernement a encore menti au peuple, et les traîtres au pouvoir détruisent notre grand pays. "
          "Ces soi-disant experts vous mentent tous les jours, et personne à Paris ne veut l'entendre.",
    "en": "The council has lied to the people again, and the traitors in office are wrecking our great town. "
          "These so-called experts lie to you every day, and nobody at city hall wants to hear it.",
}


@pytest.mark.parametrize("code", sorted(TEXTS))
def test_identify(code):
    lang = identify(TEXTS[code])
    assert lang.code == code and lang.reliable and lang.confidence > 0.9
    assert lang.not_english == (code != "en")


@pytest.mark.parametrize("text", ["", "These traitors lie.", "x" * (MIN_CHARS - 1), "\x00\x01 " * 60,
                                  "The CIA (ЦРУ) and the FSB (ФСБ) lied to everyone again.", "a β", "12345 !!!"])
def test_short_or_odd_texts_are_undetermined_not_guessed(text):
    lang = identify(text)
    assert lang.code == "und" and not lang.not_english and lang.warning() is None


@pytest.mark.parametrize("text, script", [("Предатели повсюду", "Cyrillic letters"), ("中国", "Chinese characters"),
                                          ("الحكومة تكذب", "Arabic letters"), ("한국 정부는 거짓말을 했다", "Korean Hangul")])
def test_a_short_text_in_another_script_is_called_by_its_script(text, script):
    """Too short for CLD2 to name its language, but its letters are not ones the model can read."""
    lang = identify(text)
    assert lang.code == "und" and lang.script == script and lang.script_share == 1.0 and lang.not_english
    assert lang.warning().startswith(f"the text is written mostly in {script} (100% of its letters)")


def test_a_short_russian_headline_is_analysed_with_a_warning_or_skipped(tmp_path):
    (tmp_path / "ru.txt").write_text("Предатели повсюду!", encoding="utf-8")
    res = run_cli("analyze", tmp_path / "ru.txt", "-f", "json")
    assert res.rc == 0 and "warning: ru: the text is written mostly in Cyrillic letters" in res.stderr
    d = json.loads(res.stdout)
    assert d["language"]["code"] == "und" and "Cyrillic letters" in d["warnings"][0]
    res = run_cli("analyze", tmp_path / "ru.txt", "-f", "json", "--skip-non-english")
    assert res.rc == 1 and "skipped ru: not analysed (--skip-non-english): the text is written mostly in Cyrillic" in res.stderr


def test_a_german_text_is_analysed_with_a_warning(model):
    a = analyze(Document("de", TEXTS["de"]), model=model)
    assert a.language == "de" and a.language_confidence > 0.9
    assert len(a.warnings) == 1 and "German" in a.warnings[0] and "English only" in a.warnings[0]
    d = a.to_dict()
    assert d["language"] == {"code": "de", "confidence": round(a.language_confidence, 2)} and d["warnings"] == a.warnings
    en = analyze(Document("en", TEXTS["en"]), model=model)
    assert en.language == "en" and en.warnings == []


def test_every_output_carries_the_warning(tmp_path, model):
    from propscan.outputs.report import render_html

    (tmp_path / "de.txt").write_text(TEXTS["de"], encoding="utf-8")
    (tmp_path / "en.txt").write_text(TEXTS["en"], encoding="utf-8")
    res = run_cli("analyze", tmp_path / "de.txt", tmp_path / "en.txt", "-f", "jsonl")
    assert res.rc == 0
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["language"]["code"] for r in rows] == ["de", "en"] and rows[0]["warnings"] and not rows[1]["warnings"]
    assert "warning: de: the text looks like German" in res.stderr and "en:" not in res.stderr
    html = render_html([analyze(Document("de", TEXTS["de"]), model=model)])
    assert 'class="warn"' in html and "looks like German" in html


def test_unreadable_characters_are_warned_about(tmp_path, model):
    """A byte that was not UTF-8 reaches the model as U+FFFD: the analysis says so, in every output."""
    a = analyze(Document("x", TEXTS["en"].replace("e", "\ufffd", 2)), model=model)
    assert a.warnings == ["2 characters could not be read (shown as \ufffd: bytes that were not valid UTF-8 where the "
                          "text came from); the words next to them may be misread"]
    (tmp_path / "bad.txt").write_bytes(TEXTS["en"].encode("utf-8").replace(b"e", b"\x9d", 1) + "\u2019".encode())
    res = run_cli("analyze", tmp_path / "bad.txt", "-f", "json")
    assert res.rc == 0 and "warning: bad: 1 character could not be read" in res.stderr
    assert json.loads(res.stdout)["warnings"][0].startswith("1 character could not be read")
    assert analyze(Document("en", TEXTS["en"]), model=model).warnings == []


def test_skip_non_english(tmp_path):
    (tmp_path / "de.txt").write_text(TEXTS["de"], encoding="utf-8")
    (tmp_path / "en.txt").write_text(TEXTS["en"], encoding="utf-8")
    res = run_cli("analyze", tmp_path, "-f", "jsonl", "--skip-non-english")
    assert res.rc == 1 and "skipped de: not analysed (--skip-non-english)" in res.stderr
    assert [json.loads(line)["document"]["id"] for line in res.stdout.splitlines()] == ["en"]


def test_corpus_stores_the_language_and_groups_by_it(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for code in ("de", "fr", "en"):
        (folder / f"{code}.txt").write_text(TEXTS[code], encoding="utf-8")
    db = tmp_path / "c.sqlite"
    assert run_cli("corpus", "run", folder, "--db", db).rc == 0
    res = run_cli("corpus", "stats", "--db", db, "--by", "language", "--json")
    assert res.rc == 0, res.stderr
    groups = {g["group"]: g["documents"] for g in json.loads(res.stdout)["groups"]}
    assert groups == {"de": 1, "en": 1, "fr": 1}
    import sqlite3

    from propscan.corpus import rows

    conn = sqlite3.connect(db)
    (aid,) = conn.execute("SELECT a.id FROM analyses a JOIN documents d ON d.id = a.document_id WHERE d.doc_id = 'de'").fetchone()
    a = rows.load_analysis(conn, aid)
    assert a.language == "de" and a.warnings and "German" in a.warnings[0]
    conn.close()
