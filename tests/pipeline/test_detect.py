"""Per-technique detection: cleaning, headings, repeated phrases, calibration maps, cutoffs; and the
shipped model's settings (no technique switched off, labels in order)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from propscan.pipeline import calibrate, encoding
from propscan.pipeline.detect import ANY, STOP_WORDS, Context, Detector, Settings, evidence_for, in_heading, repeats, resolve_cutoffs, trim
from propscan.pipeline.model import MODEL_DIR
from propscan.techniques import TECHNIQUE_IDS, check_confidence, parse_cutoffs, reliability, resolve


# ----------------------------------------------------------------------------------------------- cleaning


def _trimmed(model, text: str, phrase: str) -> str | None:
    enc = encoding.encode(model.tokenizer, text)
    a, b = encoding.token_range(enc, text.index(phrase), text.index(phrase) + len(phrase))
    got = trim(text, enc, a, b)
    return None if got is None else text[int(enc.offsets[got[0], 0]) : int(enc.offsets[got[1] - 1, 1])]


def test_trim_drops_edge_function_words(model) -> None:
    text = "They called him a gambler of the worst kind, and our mayor agreed."
    assert _trimmed(model, text, "a gambler of the") == "gambler"
    assert _trimmed(model, text, "of the worst kind") == "worst kind"
    assert _trimmed(model, text, "and our mayor") == "mayor"


@pytest.mark.parametrize("junk", ["of", "our", "who", "of the", "2019", "12, 14", "...", "and so on and"])
def test_trim_rejects_spans_without_a_content_word(model, junk: str) -> None:
    text = f"Before {junk} after."
    assert _trimmed(model, text, junk) is None or _trimmed(model, text, junk) == "on"  # "on" is a stop word too
    assert _trimmed(model, text, junk) is None


def test_trim_drops_web_and_email_addresses(model) -> None:
    text = "Read the lies at https://example.com/lies-2019 today. Write to editor@example.com or see Crux.com now."
    assert _trimmed(model, text, "lies at https://example.com/lies-2019") == "lies"
    assert _trimmed(model, text, "https://example.com/lies-2019") is None
    assert _trimmed(model, text, "editor@example.com") is None
    assert _trimmed(model, text, "see Crux.com") == "see Crux.com"  # a bare domain is a name, not an address


def test_trim_drops_html_character_references(model) -> None:
    """Feed and scraped text keeps "&quot;" and "&#8217;": their letters are no words a span may begin or end with."""
    text = "These &quot;experts&quot; are crooks &amp; liars, and they don&#8217;t care."
    assert _trimmed(model, text, "quot;experts&quot; are crooks &amp;") == "experts&quot; are crooks"
    assert _trimmed(model, text, "&amp;") is None
    assert _trimmed(model, text, "crooks &amp; liars") == "crooks &amp; liars"  # inside a span it stays


def test_trim_drops_words_the_encoder_cannot_read(model) -> None:
    """A "word" over 100 characters (a base64 blob, a hash) is one unknown token to the encoder: no span is
    made of one or ends in one; inside a span it stays."""
    blob = "aGVsbG8" * 20  # 140 characters
    text = f"They are corrupt {blob} liars, and the {'x' * 101} stays."
    assert _trimmed(model, text, blob) is None
    assert _trimmed(model, text, f"corrupt {blob}") == "corrupt"
    assert _trimmed(model, text, f"{blob} liars") == "liars"
    assert _trimmed(model, text, f"corrupt {blob} liars") == f"corrupt {blob} liars"
    assert _trimmed(model, text, "x" * 100) is None  # the same word, 101 letters: never read
    assert _trimmed(model, "a " + "y" * 100 + " b", "y" * 100) == "y" * 100  # 100 letters is still a word


def test_a_text_of_one_endless_word_gets_no_span(model) -> None:
    """Three 100,000-character Bandwagon spans came out of 300,000 "a"s (a key held down, a pasted blob)."""
    from propscan.pipeline.analyze import analyze

    assert analyze("a" * 300_000, model=model).spans == []


def test_markup_is_found_run_by_run_as_over_the_whole_text() -> None:
    """markup_ranges looks only in the runs of non-space characters that could hold an address or a
    character reference: the same ranges as the pattern over the whole text, on random strings built
    from the characters that matter."""
    import random

    from propscan.pipeline.detect import MARKUP, markup_ranges

    rnd = random.Random(7)
    parts = list("aw.@/:&;#x -ht_+1\n") + ["http://", "www.", "&amp;", "@b.co", ".com/", "é", "WWW."]
    for _ in range(3000):
        text = "".join(rnd.choice(parts) for _ in range(rnd.randint(1, 40)))
        assert markup_ranges(text) == [m.span() for m in MARKUP.finditer(text)], text


def test_a_run_longer_than_any_address_is_read_as_words() -> None:
    """Over a 300,000-letter run the address patterns backtracked for 87 s; a run longer than LONGEST_RUN
    is no address."""
    from propscan.pipeline.detect import LONGEST_RUN, markup_ranges

    url = "https://example.com/" + "a" * (LONGEST_RUN - 20)
    assert len(url) == LONGEST_RUN
    assert markup_ranges(f"see {url} and {url}b here") == [(4, 4 + LONGEST_RUN)]


def test_a_phrase_said_many_times_is_pooled_once(model, monkeypatch) -> None:
    """Every mention's span asks for its phrase's pooled evidence again (its alternatives): it is
    computed once per phrase, not once per mention (a phrase said 90,000 times was stopped after minutes)."""
    from propscan.pipeline import detect
    from propscan.pipeline.analyze import analyze

    calls = []
    real = detect._any_means
    monkeypatch.setattr(detect, "_any_means", lambda ctx, where: calls.append(len(where)) or real(ctx, where))
    spans = analyze("They lied to us. " + "Traitors, traitors everywhere! " * 150, model=model).spans
    assert sum(s.technique == "Repetition" for s in spans) > 100
    assert len(calls) < 20


LINKS = ("Sources: https://www.whitehouse.gov/briefings-statements/remarks-president-trump-state-union-address-3/ "
         "and https://twitter.com/realDonaldTrump/status/1234567890\nSee also www.breitbart.com/politics/2019/01/01/the-wall "
         "and https://www.breitbart.com/politics/2019/01/02/the-wall for details.\nContact editor@example.com.\n"
         "https://example.com/a\nhttps://example.com/b\n")


def test_no_span_is_made_of_an_address_and_none_ends_in_one(model) -> None:
    """At the lowest confidence the shipped model read these lines' address words ("https", "www", "com") as
    Repetition, Name calling and Appeal to authority; an address holds no technique."""
    from propscan.pipeline.analyze import analyze

    addresses = [w.rstrip(".") for w in LINKS.split() if "/" in w or "@" in w]
    links, at = [], 0
    for a in addresses:
        at = LINKS.index(a, at)
        links.append((at, at + len(a)))
    assert len(links) == 7
    result = analyze(LINKS, model=model, threshold=0.02)
    for span in result.spans:
        for s, e in links:
            assert not (s <= span.start and span.end <= e), (span, LINKS[span.start : span.end])
            assert not (s < span.start < e or s < span.end < e), (span, LINKS[span.start : span.end])


def test_stop_words_are_lower_case_words() -> None:
    assert all(w == w.lower() and w.isalpha() for w in STOP_WORDS)


def test_in_heading() -> None:
    text = "Where did the story start?\nThe mayor, who never explains himself, said it started in May. Why?\n"
    assert in_heading(text, 0, 5)  # a short line, a question, no full stop: a heading
    s = text.index("Why")
    assert not in_heading(text, s, s + 3)  # inside a sentence of a paragraph
    assert not in_heading("A short line ends here.", 0, 5)
    numbered = "3. What were the lies about the recent conflicts?\nb) Why now?\n"
    assert in_heading(numbered, numbered.index("lies"), numbered.index("lies") + 4)  # its "3." ends no sentence
    assert in_heading(numbered, numbered.index("now"), numbered.index("now") + 3)
    long_item = "a) The US disgrace: the US had not received such an attack at this level since the war.\n"
    assert not in_heading(long_item, 3, 5)


def test_repeats_mark_later_occurrences_only(model) -> None:
    text = "Illegal aliens are coming. The illegal aliens will stay, said the illegal aliens group."
    out = model.token_outputs(text)
    ctx = Context(model, text, out)
    found = {(text[int(out.enc.offsets[c.a, 0]) : int(out.enc.offsets[c.b - 1, 1])].lower(), int(out.enc.offsets[c.a, 0]))
             for c in repeats(ctx, TECHNIQUE_IDS.index("Repetition"), 2)}
    first = text.lower().index("illegal aliens")
    assert ("illegal aliens", first) not in found  # the first mention is not a repetition
    assert sum(1 for phrase, _ in found if phrase == "illegal aliens") == 2
    assert all(phrase.split()[0] not in STOP_WORDS for phrase, _ in found)  # "the" never starts one


def test_a_repeated_address_is_no_repeated_phrase(model) -> None:
    text = "The wall lies: www.example.com/wall and again www.example.com/wall, the wall."
    ctx = Context(model, text, model.token_outputs(text))
    phrases = {" ".join(p) for p in ctx.phrases(2)}
    assert "wall" in phrases and "example" not in phrases and "com" not in phrases and "www" not in phrases


def test_pooled_repeats_take_the_phrases_evidence_over_all_its_mentions(model) -> None:
    """A pooled repeat's evidence is the mean over every mention of the phrase (the first included) of
    the mention's mean "any technique" probability: one value for all its later mentions, which
    evidence_for (the alternatives' scale) reproduces; the mentions marked are those the local one marks."""
    text = "Illegal aliens are coming. The illegal aliens will stay, said the illegal aliens group. Aliens!"
    out = model.token_outputs(text)
    ctx, rep = Context(model, text, out), TECHNIQUE_IDS.index("Repetition")
    local, pooled = repeats(ctx, rep, 2), repeats(ctx, rep, 2, pool=True)
    assert [(c.a, c.b) for c in local] == [(c.a, c.b) for c in pooled] and pooled

    def mentions(phrase):
        return [encoding.token_range(out.enc, m, m + len(phrase)) for m in range(len(text)) if text.lower().startswith(phrase, m)
                and not text[m + len(phrase)].isalnum()]

    p_any = out.probs[:, ANY]
    for phrase in ("illegal aliens", "aliens"):
        where = mentions(phrase)
        expected = np.mean([p_any[a:b].mean() for a, b in where])
        got = [c for c in pooled if (c.a, c.b) in where[1:]]
        assert len(got) == len(where) - 1 and all(c.evidence == pytest.approx(expected) for c in got)
        assert {c.evidence for c in local if (c.a, c.b) in where[1:]} != {expected}  # the local ones differ
        det = Detector("repeat", 0, ngram=2, pool=True)
        assert evidence_for(ctx, rep, det, *where[-1], None) == pytest.approx(expected)
        assert evidence_for(ctx, rep, det, *where[0], None) == 0.0  # a first mention repeats nothing


def test_only_repeated_phrases_are_indexed_and_others_keep_their_own_reading(model) -> None:
    """Context.phrases holds the phrases that occur more than once; words that recur only inside
    another word ("cover" in "cover-up") are no phrase the pooled detector reads, so their evidence
    is their own mean "any technique" probability."""
    text = "The cover-up was crude. Nobody would cover it, and the cover-up went on."
    out = model.token_outputs(text)
    ctx, rep = Context(model, text, out), TECHNIQUE_IDS.index("Repetition")
    phrases = ctx.phrases(2)
    assert ("cover-up",) in phrases and len(phrases[("cover-up",)]) == 2
    assert all(len(where) > 1 for where in phrases.values()) and ("cover",) not in phrases
    s = text.index("cover it")
    a, b = encoding.token_range(out.enc, s, s + len("cover"))
    own = float(out.probs[a:b, ANY].mean())
    assert evidence_for(ctx, rep, Detector("repeat", 0, ngram=2, pool=True), a, b, None) == pytest.approx(own)


def test_a_repeat_detector_writes_pool_only_when_set() -> None:
    assert "pool" not in Detector("repeat", 0, ngram=2).to_json()
    assert Detector.from_json(Detector("repeat", 0, ngram=2, pool=True).to_json()) == Detector("repeat", 0, ngram=2, pool=True)
    assert "pool" not in Detector("channel", 1, pool=True).to_json()  # no meaning outside repeat


# ------------------------------------------------------------------------------------------- calibration


def test_fit_recovers_a_known_map_and_inverts() -> None:
    rng = np.random.default_rng(0)
    techs = list(TECHNIQUE_IDS)
    n = 20000
    ev = rng.uniform(0.01, 0.99, n)
    tech = rng.choice(techs[:3], n)
    true = {techs[0]: (1.5, -0.5), techs[1]: (0.8, -1.5), techs[2]: (1.0, 0.5)}
    p = np.array([calibrate.sigmoid(true[t][0] * calibrate.logit(e) + true[t][1]) for t, e in zip(tech, ev)])
    y = rng.random(n) < p
    cal = calibrate.fit(ev, y, tech, techs, shrink=0.1)
    for t, (a, b) in true.items():
        assert cal.coef[t][0] == pytest.approx(a, abs=0.15) and cal.coef[t][1] == pytest.approx(b, abs=0.15)
        for q in (0.1, 0.3, 0.7):
            assert float(cal(t, cal.inverse(t, q))) == pytest.approx(q, abs=1e-6)
    ece, table = calibrate.reliability(np.array([float(cal(t, e)) for t, e in zip(tech, ev)]), y)
    assert ece < 0.02 and sum(row[2] for row in table) == n


def test_a_flat_map_is_right_on_average_for_its_technique() -> None:
    """Where a technique's evidence runs against its spans being right, its map is flattened to the least
    slope, and its intercept fitted for that slope: the probability it gives matches the share right."""
    rng = np.random.default_rng(1)
    techs = list(TECHNIQUE_IDS)
    ev = rng.uniform(0.02, 0.98, 4000)
    tech = np.array([techs[0]] * 2000 + [techs[1]] * 2000)
    p = np.where(tech == techs[0], calibrate.sigmoid(1.2 * calibrate.logit(ev) - 0.5), 0.6 - 0.5 * ev)  # the second falls
    y = rng.random(len(ev)) < p
    cal = calibrate.fit(ev, y, tech, techs)
    assert cal.coef[techs[1]][0] == calibrate.MIN_SLOPE and cal.coef[techs[0]][0] > 1
    mine = tech == techs[1]
    assert float(np.mean(cal.each(tech[mine], ev[mine]))) == pytest.approx(float(y[mine].mean()), abs=0.01)
    assert float(cal(techs[1], cal.inverse(techs[1], 0.35))) == pytest.approx(0.35, abs=1e-6)  # still invertible


def test_reliability_of_an_overconfident_score() -> None:
    ece, table = calibrate.reliability(np.full(100, 0.9), np.r_[np.ones(50), np.zeros(50)])
    assert ece == pytest.approx(0.4) and table == [(0.9, 1.0, 100, pytest.approx(0.9), 0.5)]


def test_an_uncalibrated_model_keeps_its_evidence() -> None:
    cal = calibrate.Calibration(None)
    assert float(cal("Doubt", 0.3)) == 0.3 and cal.inverse("Doubt", 0.3) == 0.3


# ---------------------------------------------------------------------------------------------- cutoffs


def test_resolve_cutoffs_order() -> None:
    s = Settings({t: Detector() for t in TECHNIQUE_IDS}, calibrate.Calibration(None), {t: 0.3 for t in TECHNIQUE_IDS})
    assert resolve_cutoffs(s, None, None)["Doubt"] == 0.3
    assert set(resolve_cutoffs(s, 0.5, None).values()) == {0.5}
    both = resolve_cutoffs(s, 0.5, {"Slogans": 0.1})
    assert both["Slogans"] == 0.1 and both["Doubt"] == 0.5


def test_parse_cutoffs_accepts_ids_names_and_aliases() -> None:
    assert parse_cutoffs(["Slogans=0.2", "name calling / labelling=0", "Straw_Men=1"]) == {
        "Slogans": 0.2, "Name_Calling,Labeling": 0.0, "Whataboutism,Straw_Men,Red_Herring": 1.0}
    assert resolve("Loaded language") == "Loaded_Language"


@pytest.mark.parametrize("bad, words", [
    (["Slogan=0.2"], "unknown technique 'Slogan'; valid names: Loaded_Language"),
    (["Slogans=1.5"], "outside 0..1"),
    (["Slogans=-0.1"], "outside 0..1"),
    (["Slogans=nan"], "outside 0..1"),
    (["Slogans=high"], "not a number"),
    (["Slogans"], "not TECHNIQUE=VALUE"),
    (["=0.2"], "not TECHNIQUE=VALUE"),
])
def test_parse_cutoffs_rejects(bad, words) -> None:
    with pytest.raises(ValueError, match=None) as e:
        parse_cutoffs(bad)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_check_confidence() -> None:
    assert check_confidence("0.25") == 0.25
    with pytest.raises(ValueError, match="outside 0..1"):
        check_confidence(2)


def test_reliability_words() -> None:
    assert reliability(0.03) == "rarely right (precision 0.03)"
    assert reliability(0.05) == "right about 1 in 10 (precision 0.05)"
    assert reliability(0.29) == "right about 3 in 10 (precision 0.29)"
    assert reliability(0.25).startswith("right about 3 in 10") and reliability(0.24).startswith("right about 2 in 10")
    assert reliability(0.6).startswith("right about 6 in 10") and reliability(0.97).startswith("almost always right")
    # a precision from a handful of highlights names no band
    assert reliability(0.33, 4) == "too few to judge (4 highlights, precision 0.33)"
    assert reliability(0.0, 1) == "too few to judge (1 highlight, precision 0.00)"
    assert reliability(0.33, 20) == "right about 3 in 10 (precision 0.33)"


# -------------------------------------------------------------------------------------- shipped models


@pytest.mark.parametrize("folder", sorted(p for p in MODEL_DIR.parent.iterdir() if (p / "model.json").exists()))
def test_shipped_models_switch_no_technique_off(folder) -> None:
    meta = json.loads((folder / "model.json").read_text())
    assert meta["labels"] == list(TECHNIQUE_IDS)
    for t in TECHNIQUE_IDS:
        assert 0 <= meta["thresholds"][t] <= 1, t  # a threshold above 1 is a technique switched off
        assert 0 <= meta["cutoffs"][t] < 1, t
        assert meta["detectors"][t]["source"] in ("channel", "classify", "repeat")
        assert meta["calibration"][t][0] > 0  # increasing: a cutoff on it is a cutoff on the evidence
        for split in ("tuning", "dev"):
            assert set(meta["by_technique"][t][split]) >= {"precision", "recall", "f1"}
    assert 0 <= meta["dev"]["ece"] <= 1


def test_a_model_with_other_labels_is_refused(tmp_path) -> None:
    import shutil

    from propscan.errors import ModelError
    from propscan.pipeline.model import Model

    for f in MODEL_DIR.iterdir():
        shutil.copy(f, tmp_path / f.name)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["labels"] = list(reversed(meta["labels"]))
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="labels"):
        Model(tmp_path)


# ------------------------------------------------------------------------------------ glued sentences


def _strong_everywhere(model, text: str):
    """The text's outputs with every token strongly "propaganda" (p 0.9), its detection context, and a
    function giving a detector's candidates (technique 0, floor 0) as character ranges."""
    from dataclasses import replace

    from propscan.pipeline.detect import candidates

    out = model.token_outputs(text)
    out = replace(out, logits=np.full_like(out.logits, 2.2))
    ctx = Context(model, text, out)

    def found(det: Detector) -> list[tuple[int, int]]:
        return [(int(out.enc.offsets[c.a, 0]), int(out.enc.offsets[c.b - 1, 1])) for c in candidates(ctx, 0, det, 0.0)]

    return out, ctx, found


def test_no_candidate_runs_over_a_glued_sentence_end(model) -> None:
    """Scraped text glues sentences ("attacks.The evidences"): a run of high probabilities over the glue
    is cut there, for the technique channels and the runs the span head names alike."""
    text = "They fear our missile attacks.The evidences are everywhere, said Dr. Smith of the U.S.A today."
    out, ctx, candidates_of = _strong_everywhere(model, text)
    glue = text.index("The evidences")
    for det in (Detector("channel", max_gap=1), Detector("classify", max_gap=1, any_threshold=0.5)):
        found = candidates_of(det)
        assert found and all(not (s < glue < e) for s, e in found), found
        assert any(s == glue for s, _ in found)  # the second sentence is still a candidate
    # "Dr. Smith", "U.S.A" are not glued sentence ends: one run from the glue to the end
    assert [(int(out.enc.offsets[a, 0])) for a, _ in ctx.any_runs(0.5, 1)] == [0, glue]


def test_a_grown_run_takes_in_its_weaker_neighbours_and_no_run_without_a_strong_token(model) -> None:
    """Detector.grow: a technique channel's run found at the threshold spreads over neighbouring tokens that
    reach grow x the threshold; tokens that only reach the lower threshold, with no strong token among
    them, make no run. grow 1 is the plain run."""
    from dataclasses import replace

    from propscan.pipeline.detect import candidates

    text = "They will destroy our great nation, said the mayor. Critics were somewhat unhappy today."
    out = model.token_outputs(text)
    logit = {"destroy": 2.2, "great": 2.2, "our": 0.0, "nation": 0.0, "somewhat": 0.0, "unhappy": 0.0}  # 0.9, 0.5
    logits = np.full_like(out.logits, -4.0)
    for word, value in logit.items():
        a, b = encoding.token_range(out.enc, text.index(word), text.index(word) + len(word))
        logits[a:b] = value
    out = replace(out, logits=logits)
    ctx = Context(model, text, out)

    def found(det: Detector) -> list[str]:
        return [text[int(out.enc.offsets[c.a, 0]) : int(out.enc.offsets[c.b - 1, 1])] for c in candidates(ctx, 0, det, 0.8)]

    assert found(Detector("channel", 0)) == ["destroy", "great"]
    assert found(Detector("channel", 0, grow=0.5)) == ["destroy our great nation"]
    assert [c.evidence for c in candidates(ctx, 0, Detector("channel", 0, grow=0.5), 0.8)] == pytest.approx([0.9], abs=0.01)
    assert Detector.from_json(Detector("channel", 1, grow=0.7).to_json()) == Detector("channel", 1, grow=0.7)
    assert "grow" not in Detector("channel", 1).to_json()  # a model.json before grow reads the same
    # a classify detector grows the "any technique" runs it hands the span classifier the same way
    named = lambda det: [text[int(out.enc.offsets[c.a, 0]) : int(out.enc.offsets[c.b - 1, 1])] for c in candidates(ctx, 0, det, 0.0)]  # noqa: E731
    assert named(Detector("classify", 0, any_threshold=0.8)) == ["destroy", "great"]
    assert named(Detector("classify", 0, any_threshold=0.8, grow=0.5)) == ["destroy our great nation"]
    assert Detector.from_json(Detector("classify", 1, any_threshold=0.2, grow=0.7).to_json()).grow == 0.7
    assert "grow" not in Detector("classify", 1, any_threshold=0.2).to_json()


def test_no_candidate_runs_from_a_numbered_heading_into_its_section(model) -> None:
    """A numbered section title and the text below it are not one passage, however strong the run; a plain
    short question line is (PTC has gold spans running on from such lines)."""
    text = "Intro line here.\n4. Warning to all Resistance groups!\nNow, some European countries are leaving.\nWhy now?\nThey fear us."
    _, _, candidates_of = _strong_everywhere(model, text)
    below = text.index("Now, some")
    question = text.index("They fear")
    for det in (Detector("channel", max_gap=1), Detector("classify", max_gap=1, any_threshold=0.5)):
        found = candidates_of(det)
        assert all(not (s < below < e) for s, e in found), found
        assert any(s == below for s, _ in found)  # the section's text is still a candidate
        assert any(s < question < e for s, e in found)  # "Why now?" runs on into the next line


def test_no_candidate_runs_across_a_paragraph_break_or_into_a_list_item(model) -> None:
    """A blank line ends a passage (no PTC gold span contains one), and so does the start of a list item
    ("b) ..."), however strong the run; a plain line break inside a paragraph does not."""
    text = ("They bomb our towns.\n\nThe cowards lie.\nThey hide.\nb) The military authority of Iran crushed them.\n"
            "c) Unity grows \n \n Strength returns.")
    _, _, candidates_of = _strong_everywhere(model, text)
    starts = [text.index(p) for p in ("The cowards", "b) The", "c) Unity", "Strength")]
    for det in (Detector("channel", max_gap=1), Detector("classify", max_gap=1, any_threshold=0.5)):
        found = candidates_of(det)
        assert all(not (s < cut < e) for s, e in found for cut in starts), found
        assert {s for s, _ in found} >= {0, *starts}  # each passage is still a candidate
        # a plain line break inside a paragraph cuts nothing: "The cowards lie.\nThey hide." is one run
        assert (starts[0], text.index("They hide.") + len("They hide.")) in found


def test_a_confidence_below_a_flat_maps_range_keeps_the_evidence_floor(model) -> None:
    """A nearly flat calibration map gives every candidate about the same probability; asked for less
    than its least (say 0.1 where the map never goes below 0.25), the token threshold stays at the
    lowest evidence tuning ever tried (EVIDENCE_FLOOR), not 0, where every token of the text would join
    one run."""
    from dataclasses import replace

    from propscan.pipeline.detect import EVIDENCE_FLOOR, detect
    from propscan.training.tune import GRID

    assert GRID[0] == EVIDENCE_FLOOR
    tech = "Flag-Waving"
    flat = calibrate.Calibration({tech: [calibrate.MIN_SLOPE, -0.66]})
    assert flat.inverse(tech, 0.1) < 1e-6  # the map's least value is 0.25: any evidence reaches 0.1
    text = "Our great nation stands tall and the proud people of this land will never bow to anyone at all."
    out = model.token_outputs(text)
    t = TECHNIQUE_IDS.index(tech)
    logits = np.full_like(out.logits, -10.0)
    logits[:, t] = np.log(0.001 / 0.999)  # weak evidence everywhere: below the floor
    nation = encoding.token_range(out.enc, text.index("nation"), text.index("nation") + len("nation"))
    logits[nation[0] : nation[1], t] = 2.0  # strong on one word
    out = replace(out, logits=logits)
    settings = Settings({u: Detector("channel", max_gap=1) for u in TECHNIQUE_IDS}, flat, {u: 0.5 for u in TECHNIQUE_IDS})
    cut = resolve_cutoffs(settings, 0.1, None)
    spans = [s for s in detect(model, settings, text, out, cut, with_alternatives=False) if s.technique == tech]
    assert [text[s.start : s.end] for s in spans] == ["nation"]
