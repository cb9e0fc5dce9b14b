"""propscan corpus: the SQLite store, runs (idempotent, crash-safe), stats, plots, exports, the site,
shard import and schema migrations.

The corpus is synthetic JSONL news (short articles with outlets and dates, written at test time) plus
PTC dev articles copied into tmp_path from ../shared (that part is skipped when the data is absent).

The kill test starts ``python -m propscan corpus run`` as a real process, SIGKILLs it several times in
mid-run, re-runs it to completion and compares the database with an uninterrupted run. Its size is
``PROPSCAN_KILL_TEST_DOCS`` (default 1000: 950 short synthetic documents + 50 PTC articles; 2000 took
95 s of a CI run that must fit in 20 minutes, and 1000 still leaves several seconds between kills).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PTC_DEV_ARTICLES, ROOT, run_cli
from propscan.corpus import database, export, rows, runner, shards, stats
from propscan.corpus.database import CorpusError, connect
from propscan.corpus.rows import BatchWriter, DocRow, Result, SetKey, content_hash
from propscan.document import Document

KILL_DOCS = int(os.environ.get("PROPSCAN_KILL_TEST_DOCS", "1000"))
OUTPUT = ROOT / "tests" / "output"

# ----------------------------------------------------------------------------------------------------------
# a synthetic news corpus

_SUBJECTS = ["The mayor", "The council", "Local residents", "The governor", "Opposition leaders", "The school board",
             "Health officials", "The union", "Business owners", "The committee", "City engineers", "Volunteers"]
_NEUTRAL = [
    "{s} met on {d} to discuss the {n} budget.",
    "{s} said the {n} plan would be reviewed next month.",
    "The vote on the {n} proposal passed {a} to {b}.",
    "{s} published a report on the {n} project.",
    "Rainfall in the {n} district was slightly above average this spring.",
    "A public hearing on the {n} contract is scheduled for {d}.",
    "{s} expects the {n} works to finish in {a} weeks.",
]
_LOADED = [
    "{s} made a reckless, shameful decision that will gut our {n} services.",
    "These corrupt traitors are destroying our great city!",
    "Every true patriot knows the {n} plan is what our nation stands for.",
    "Can we really believe {s_l} after they changed their story twice?",
    "If the {n} plan passes, our streets will never be safe for our children again.",
    "Either you support the {n} project or you hate this town.",
    "The so-called experts from the ivory tower want to tell you how to live.",
    "It is a tax grab, a tax grab on families, nothing but a tax grab.",
]
_NOUNS = ["bridge", "school", "water", "transit", "housing", "library", "harbour", "parking", "stadium", "park"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def synthetic_text(rnd: random.Random) -> tuple[str, str]:
    """(title, text) of 2-4 sentences, about half of them loaded."""
    n = rnd.randint(2, 4)
    out = []
    for _ in range(n):
        tpl = rnd.choice(_LOADED if rnd.random() < 0.45 else _NEUTRAL)
        s = rnd.choice(_SUBJECTS)
        out.append(tpl.format(s=s, s_l=s.lower(), n=rnd.choice(_NOUNS), d=rnd.choice(_DAYS), a=rnd.randint(2, 9), b=rnd.randint(0, 5)))
    title = f"{rnd.choice(_NOUNS).title()} {rnd.choice(['row', 'vote', 'plan', 'report'])}"
    return title, " ".join(out)


OUTLETS = ["Daily Bugle", "The Planet", "Gotham Gazette"]


def write_synthetic(folder: Path, n: int, seed: int = 7, files: int = 4, duplicates: int = 3) -> int:
    """``n`` JSONL records in ``files`` files: outlets by site field, by URL host and (last file) by folder;
    dates over three months; ``duplicates`` records repeat an earlier text under a new id."""
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-n // files)
    made = 0
    texts: list[str] = []
    for f in range(files):
        sub = folder / ("wire" if f == files - 1 else "feeds")
        sub.mkdir(exist_ok=True)
        with open(sub / f"news-{f}.jsonl", "w", encoding="utf-8") as fh:
            for _ in range(min(per, n - made)):
                title, text = synthetic_text(rnd)
                if texts and made % max(1, n // max(duplicates, 1)) == 1 and duplicates:
                    text = texts[rnd.randrange(len(texts))]  # syndicated copy under another id
                texts.append(text)
                rec = {"id": f"s{made:05d}", "text": text, "title": title,
                       "date": f"2024-{rnd.randint(1, 3):02d}-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:00:00Z"}
                if f == files - 1:
                    pass  # the outlet is the folder's name
                elif f % 2 == 0:
                    rec["site"] = OUTLETS[made % len(OUTLETS)]
                else:
                    rec["url"] = f"https://www.{['bugle.example', 'planet.example'][made % 2]}/a/{made}"
                fh.write(json.dumps(rec) + "\n")
                made += 1
    return made


def copy_ptc(folder: Path, n: int) -> int:
    if not PTC_DEV_ARTICLES.is_dir() or n <= 0:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(PTC_DEV_ARTICLES.glob("article*.txt"))[:n]
    for f in files:
        shutil.copyfile(f, folder / f.name)
    return len(files)


def add_bad_inputs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 8)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("corpus")
    n_syn = write_synthetic(base / "in", 24)
    n_ptc = copy_ptc(base / "in" / "ptc-dev", 3)
    add_bad_inputs(base / "in" / "bad")
    return {"base": base, "inputs": [str(base / "in")], "n_docs": n_syn + n_ptc, "n_ptc": n_ptc}


@pytest.fixture(scope="module")
def small_db(small_corpus, model) -> Path:
    db = small_corpus["base"] / "small.sqlite"
    s = runner.run(db, small_corpus["inputs"], model=model, batch=5)
    assert s.read == small_corpus["n_docs"]
    assert s.failed == 2
    return db


def db_rows(db: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(db)  # never writes; a plain connection reads a WAL database in any state
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


SPANS_SQL = 'SELECT doc_id, sha256, technique, start, "end", score, text FROM span_view ORDER BY doc_id, sha256, start, "end", technique'
SENTS_SQL = (
    'SELECT d.doc_id, d.sha256, se.start, se."end", se.score, se.n_spans FROM sentences se JOIN analyses a ON a.id = se.analysis_id'
    ' JOIN documents d ON d.id = a.document_id ORDER BY d.doc_id, d.sha256, se.start'
)
ANALYSES_SQL = "SELECT doc_id, sha256, model_version, threshold, score, n_spans, n_sentences, n_sentences_hit FROM analysis_view ORDER BY doc_id, sha256"


def assert_same_results(db_a: Path, db_b: Path) -> None:
    """Same documents, analyses, spans and sentences (scores to 1e-6); created times may differ."""
    for sql in (ANALYSES_SQL, SPANS_SQL, SENTS_SQL):
        a, b = db_rows(db_a, sql), db_rows(db_b, sql)
        assert len(a) == len(b), sql
        for ra, rb in zip(a, b):
            for x, y in zip(ra, rb):
                if isinstance(x, float) and isinstance(y, float):
                    assert abs(x - y) <= 1e-6, (ra, rb)
                else:
                    assert x == y, (ra, rb)


# ----------------------------------------------------------------------------------------------------------
# units: outlet, date, sentence hits


def test_outlet_and_date_rules():
    assert rows.outlet_for({"site": "  The  Planet ", "url": "https://x.example"}) == "The Planet"
    assert rows.outlet_for({"outlet": "Bugle"}) == "Bugle"
    assert rows.outlet_for({"url": "https://www.News.Example:8080/a?b=1"}) == "news.example"
    assert rows.outlet_for({"url": "news.example/a/b"}) == "news.example"
    assert rows.outlet_for({"path": "/data/corpora/guardian/a1.txt"}) == "guardian"
    assert rows.outlet_for({"path": "<stdin>"}) is None
    assert rows.outlet_for({}) is None
    assert rows.date_for("2024-03-05") == "2024-03-05"
    assert rows.date_for("2024-03-05T23:30:00-05:00") == "2024-03-05"  # the date as written, no shift
    assert rows.date_for("2024-03-05T10:00:00Z") == "2024-03-05"
    assert rows.date_for("2024-03-05 garbage") == "2024-03-05"
    assert rows.date_for("2024-02-30") is None
    assert rows.date_for("March 5, 2024") is None
    assert rows.date_for(20240305) is None
    assert rows.date_for(None) is None


def test_sentence_hits_counts_overlaps():
    sents = [(0, 10, 0.1), (11, 20, 0.2), (21, 30, 0.3)]
    spans = [("Doubt", 5, 12, 0.5, "{}"), ("Doubt", 12, 14, 0.5, "{}"), ("Slogans", 20, 21, 0.5, "{}"), ("Doubt", 0, 30, 0.5, "{}")]
    assert rows.sentence_hits(sents, spans) == [2, 3, 1]
    assert rows.sentence_hits(sents, []) == [0, 0, 0]


# ----------------------------------------------------------------------------------------------------------
# a run: every document once, failures recorded, idempotent, same as analyze()


def test_run_stores_every_document_once(small_corpus, small_db, model):
    from propscan.pipeline.analyze import analyze
    from propscan.pipeline.ingest import iter_documents

    n = small_corpus["n_docs"]
    assert db_rows(small_db, "SELECT COUNT(*) FROM documents")[0][0] == n
    assert db_rows(small_db, "SELECT COUNT(*) FROM analyses")[0][0] == n
    assert db_rows(small_db, "PRAGMA journal_mode")[0][0] == "wal"
    fails = db_rows(small_db, "SELECT source, doc_id, error FROM failures ORDER BY source")
    assert [(Path(s).name, d, e) for s, d, e in fails] == [("binary.txt", "", "binary file, not text"), ("empty.txt", "", "empty")]
    # outlets: site field, URL host (www. dropped), parent folder
    outlets = {r[0] for r in db_rows(small_db, "SELECT DISTINCT outlet FROM documents")}
    assert {"Daily Bugle", "bugle.example", "planet.example", "wire"} <= outlets
    if small_corpus["n_ptc"]:
        assert "ptc-dev" in outlets
    # each stored analysis is exactly what analyze() gives
    conn = connect(small_db, create=False)
    for doc in iter_documents(small_corpus["inputs"]):
        if not isinstance(doc, Document):
            continue
        want = analyze(doc, model=model)
        (aid,) = conn.execute(
            "SELECT a.id FROM analyses a JOIN documents d ON d.id = a.document_id WHERE d.doc_id = ? AND d.sha256 = ?",
            (doc.id, content_hash(doc.text)),
        ).fetchone()
        got = rows.load_analysis(conn, aid)
        assert got.to_dict() == want.to_dict()
    conn.close()


def test_same_text_under_another_id_is_copied(small_db):
    dups = db_rows(small_db, "SELECT sha256, COUNT(*) FROM documents GROUP BY sha256 HAVING COUNT(*) > 1")
    assert dups, "the synthetic corpus has syndicated copies"
    for sha, _ in dups:
        per_doc = {}
        for doc_id, technique, start, end, score in db_rows(
            small_db, 'SELECT doc_id, technique, start, "end", score FROM span_view WHERE sha256 = ?', (sha,)
        ):
            per_doc.setdefault(doc_id, []).append((technique, start, end, score))
        assert len({tuple(sorted(v)) for v in per_doc.values()}) <= 1


def test_documents_analysed_side_by_side_are_stored_in_order_and_analysed_once(tmp_path, monkeypatch):
    """A run analyses the next documents while it stores one. A text is analysed once however close its
    copies sit (copies are copied, repeats skipped), and when its analysis fails, a later copy is
    analysed in its turn; the stored order is the input order."""
    import threading

    from propscan.errors import PropscanError
    from propscan.pipeline.model import MODEL_DIR, Model

    a = "The corrupt elite lie to you every day. Only a fool trusts these crooks."
    b = "Our brave heroes will never surrender. Make our nation great again!"
    rows = [("x1", a), ("x2", a), ("x3", b), ("x1", a), ("x4", b + " Now."), ("x5", a)]
    src = tmp_path / "news.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows), encoding="utf-8")
    real, calls, lock, live, peak = runner.analyze, [], threading.Lock(), [0], [0]

    def counting(doc, **kw):
        with lock:
            calls.append(doc.id)
            first = doc.id == "x1" and calls.count("x1") == 1
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        try:
            time.sleep(0.05)  # long enough for the next document to start beside this one
            if first:
                raise PropscanError("x1: simulated failure")
            return real(doc, **kw)
        finally:
            with lock:
                live[0] -= 1

    monkeypatch.setattr(runner, "analyze", counting)  # the runner calls the pipeline through this name
    events = []
    s = runner.run(tmp_path / "c.sqlite", [str(src)], model=Model(MODEL_DIR, threads=2), on_event=lambda k, m: events.append((k, m)))
    assert events == [
        ("failed", "x1: x1: simulated failure"), ("analysed", "x2"), ("analysed", "x3"),
        ("copied", "x1"), ("analysed", "x4"), ("copied", "x5"),
    ]
    assert sorted(calls) == ["x1", "x2", "x3", "x4"]  # never the same text twice at once, never a copy
    assert peak[0] == 2  # documents really were analysed side by side
    assert (s.read, s.analysed, s.copied, s.already, s.failed) == (6, 3, 2, 0, 1)
    assert [r[0] for r in db_rows(tmp_path / "c.sqlite", "SELECT doc_id FROM documents ORDER BY id")] == ["x2", "x3", "x1", "x4", "x5"]


def test_rerun_is_idempotent(small_corpus, small_db, model):
    before = {t: db_rows(small_db, f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("documents", "analyses", "spans", "sentences", "failures")}
    s = runner.run(small_db, small_corpus["inputs"], model=model)
    assert (s.analysed, s.copied, s.already, s.failed) == (0, 0, small_corpus["n_docs"], 2)
    after = {t: db_rows(small_db, f"SELECT COUNT(*) FROM {t}")[0][0] for t in before}
    assert after == before
    assert db_rows(small_db, "SELECT MIN(attempts) FROM failures")[0][0] >= 2  # same failure, counted again


def test_other_threshold_is_a_second_analysis_set(small_corpus, small_db, model, tmp_path):
    db = tmp_path / "two.sqlite"
    shutil.copyfile(small_db, db)
    jsonl = sorted(Path(small_corpus["inputs"][0]).rglob("news-0.jsonl"))[0]
    s = runner.run(db, [str(jsonl)], model=model, threshold=0.3)
    assert s.analysed > 0
    sets = rows.analysis_sets(connect(db))
    assert [k.threshold for k, _, _ in sets] == [0.3, None]
    st = stats.compute_stats(connect(db), "outlet")
    assert st.key.threshold == 0.3 and st.note
    st = stats.compute_stats(connect(db), "outlet", threshold="tuned")
    assert st.key.threshold is None and st.total.documents == small_corpus["n_docs"]
    with pytest.raises(CorpusError, match="no analyses match"):
        stats.compute_stats(connect(db), "outlet", threshold="0.9")


# ----------------------------------------------------------------------------------------------------------
# stats on a fixture database with known rows (no model)

KEY = SetKey("fixture-model", "1", None, True)


def _doc(doc_id: str, text: str, outlet: str | None, date: str | None) -> DocRow:
    return DocRow(doc_id, content_hash(text), f"/in/{doc_id}.txt", outlet, date, f"Title {doc_id}", "{}", text, len(text.split()), 0)


def _res(spans: list[tuple[str, int, int, float]], sentences: list[tuple[int, int]]) -> Result:
    return Result(KEY, 0.5, [(t, s, e, sc, "{}") for t, s, e, sc in spans], [(s, e, 0.4) for s, e in sentences])


@pytest.fixture()
def fixture_db(tmp_path) -> Path:
    """Four documents with known words, sentences and spans (hand-computed expectations in the tests)."""
    db = tmp_path / "fixture.sqlite"
    conn = connect(db)
    w = BatchWriter(conn, batch=100)
    # A: outlet X, 2024-01-01 (Monday, 2024-W01); 10 words, 3 sentences
    t_a = "one two three four. five six seven. eight nine ten."
    w.add(_doc("A", t_a, "X", "2024-01-01"), _res(
        [("Loaded_Language", 0, 7, 0.9), ("Doubt", 4, 18, 0.6), ("Loaded_Language", 40, 44, 0.7)],
        [(0, 19), (20, 35), (36, 50)]), KEY)
    # B: outlet X, 2024-01-09 (2024-W02); 6 words, 2 sentences, no spans
    t_b = "alpha beta gamma. delta epsilon zeta."
    w.add(_doc("B", t_b, "X", "2024-01-09"), _res([], [(0, 17), (18, 37)]), KEY)
    # C: outlet Y, 2024-02-15; 4 words, 2 sentences
    t_c = "red green. blue white."
    w.add(_doc("C", t_c, "Y", "2024-02-15"), _res([("Doubt", 0, 3, 0.8), ("Slogans", 11, 15, 0.95)], [(0, 10), (11, 22)]), KEY)
    # D: no outlet, no date; 5 words, 1 sentence, 1 span
    t_d = "just five words in here"
    w.add(_doc("D", t_d, None, None), _res([("Loaded_Language", 5, 9, 0.5)], [(0, 23)]), KEY)
    w.fail("/in/bad.bin", "", "binary file, not text")
    w.flush()
    conn.close()
    return db


def by_key(st) -> dict:
    return {g.key: g for g in st.groups}


def test_stats_by_outlet_hand_computed(fixture_db):
    st = stats.compute_stats(connect(fixture_db), "outlet")
    g = by_key(st)
    assert [x.key for x in st.groups] == ["X", "Y", rows.UNKNOWN_OUTLET]
    x = g["X"]
    assert (x.documents, x.words, x.spans, x.sentences, x.sentences_hit) == (2, 16, 3, 5, 2)
    assert x.spans_per_1k_words == pytest.approx(1000 * 3 / 16)
    assert x.share_sentences == pytest.approx(2 / 5)
    assert x.top() == [("Loaded_Language", 2), ("Doubt", 1)]
    y = g["Y"]
    assert (y.documents, y.words, y.spans, y.sentences, y.sentences_hit) == (1, 4, 2, 2, 2)
    assert y.spans_per_1k_words == pytest.approx(500.0)
    u = g[rows.UNKNOWN_OUTLET]
    assert (u.documents, u.words, u.spans, u.sentences, u.sentences_hit) == (1, 5, 1, 1, 1)
    t = st.total
    assert (t.documents, t.words, t.spans, t.sentences, t.sentences_hit) == (4, 25, 6, 8, 5)
    assert t.spans_per_1k_words == pytest.approx(240.0)
    assert t.share_sentences == pytest.approx(5 / 8)
    assert t.top() == [("Loaded_Language", 3), ("Doubt", 2), ("Slogans", 1)]


def test_stats_by_time_hand_computed(fixture_db):
    conn = connect(fixture_db)
    day = by_key(stats.compute_stats(conn, "day"))
    assert list(day) == ["2024-01-01", "2024-01-09", "2024-02-15", rows.NO_DATE]
    assert day["2024-01-09"].spans == 0 and day["2024-01-09"].share_sentences == 0.0
    week = stats.compute_stats(conn, "week")
    assert [g.key for g in week.groups] == ["2024-W01", "2024-W02", "2024-W07", rows.NO_DATE]
    month = by_key(stats.compute_stats(conn, "month"))
    jan = month["2024-01"]
    assert (jan.documents, jan.words, jan.spans, jan.sentences, jan.sentences_hit) == (2, 16, 3, 5, 2)
    assert month["2024-02"].spans_per_1k_words == pytest.approx(500.0)
    # per (outlet, period) groups feed the per-outlet trend lines
    st = stats.compute_stats(conn, "month")
    assert st.by_outlet_period[("X", "2024-01")].spans == 3
    assert st.by_outlet_period[("Y", "2024-02")].spans == 2


def test_stats_for_one_technique_hand_computed(fixture_db):
    conn = connect(fixture_db)
    st = stats.compute_stats(conn, "outlet", technique="Doubt")
    g = by_key(st)
    # Doubt: A 4-18 overlaps sentence 0-19 only; C 0-3 overlaps 0-10
    assert (g["X"].spans, g["X"].sentences, g["X"].sentences_hit) == (1, 5, 1)
    assert (g["Y"].spans, g["Y"].sentences_hit) == (1, 1)
    assert (g[rows.UNKNOWN_OUTLET].spans, g[rows.UNKNOWN_OUTLET].sentences_hit) == (0, 0)
    assert st.total.spans_per_1k_words == pytest.approx(1000 * 2 / 25)
    assert st.total.share_sentences == pytest.approx(2 / 8)
    # names and aliases are accepted
    st2 = stats.compute_stats(conn, "outlet", technique="loaded language")
    assert st2.technique == "Loaded_Language" and st2.total.spans == 3 and st2.total.sentences_hit == 3
    with pytest.raises(CorpusError, match="unknown technique"):
        stats.compute_stats(conn, "outlet", technique="Telepathy")


def test_stats_cli_json_and_table(fixture_db):
    res = run_cli("corpus", "stats", "--db", fixture_db, "--by", "month", "--json")
    assert res.rc == 0, res.stderr
    data = json.loads(res.stdout)
    groups = {g["group"]: g for g in data["groups"]}
    assert groups["2024-01"]["spans_per_1k_words"] == pytest.approx(187.5)
    assert groups["2024-01"]["share_sentences_with_technique"] == pytest.approx(0.4)
    assert data["total"]["top_techniques"][0] == {"technique": "Loaded_Language", "name": "Loaded language", "spans": 3}
    res = run_cli("corpus", "stats", "--db", fixture_db, "--by", "outlet")
    assert res.rc == 0 and "Gotham" not in res.stdout
    assert re.search(r"X\s.*\b2\b.*\b16\b.*\b3\b.*187\.50.*40\.0%", res.stdout), res.stdout
    res = run_cli("corpus", "stats", "--db", fixture_db.with_name("nope.sqlite"))
    assert res.rc == 2 and "no such corpus database" in res.stderr and "Traceback" not in res.stderr
    # at 80 columns the top techniques move to their own table: no column squeezed to a word a line
    res = run_cli("corpus", "stats", "--db", fixture_db, "--by", "outlet", columns=80)
    lines = res.stdout.splitlines()
    assert res.rc == 0 and max(len(line.rstrip()) for line in lines) <= 80, res.stdout
    assert "top techniques" in res.stdout and any("Loaded language 3" in line for line in lines), res.stdout
    assert re.search(r"X\s.*\b2\b.*\b16\b.*\b3\b.*187\.50.*40\.0%", res.stdout), res.stdout


# ----------------------------------------------------------------------------------------------------------
# plots


def test_plots_png_svg_html(fixture_db, small_db, tmp_path):
    conn = connect(small_db)
    from propscan.corpus.site import write_plot

    month = stats.compute_stats(conn, "month")
    png = write_plot(month, tmp_path / "trend.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, OUTPUT / "corpus-stats.png")
    outlet = stats.compute_stats(conn, "outlet")
    png2 = write_plot(outlet, tmp_path / "outlets.png")
    assert png2.stat().st_size > 5_000
    shutil.copyfile(png2, OUTPUT / "corpus-outlets.png")
    svg = write_plot(stats.compute_stats(conn, "week", technique="Loaded_Language"), tmp_path / "week.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    html = write_plot(month, tmp_path / "trend.html").read_text()
    assert "<svg" in html and "Content-Security-Policy" in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    with pytest.raises(CorpusError, match="choose a .png"):
        write_plot(month, tmp_path / "x.pdf")
    # a trend of undated documents only is an error with a reason, not an empty chart
    with pytest.raises(CorpusError, match="no dated documents"):
        st = stats.compute_stats(connect(fixture_db), "day")
        st.groups = [g for g in st.groups if g.key == rows.NO_DATE]
        write_plot(st, tmp_path / "none.png")


def test_a_plot_on_a_full_disk_names_its_file_and_leaves_nothing(small_db, tmp_path):
    from propscan.corpus.site import write_plot
    from propscan.errors import OutputError

    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        (small / "full").write_bytes(bytes(60_000))  # 4 kB left; the chart is more than 10 kB (above)
        month = stats.compute_stats(connect(small_db), "month")
        with pytest.raises(OutputError, match=rf"cannot write {re.escape(str(small / 'trend.png'))}: No space left on device"):
            write_plot(month, small / "trend.png")
        assert [p.name for p in small.iterdir()] == ["full"]  # no temp file left
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


# ----------------------------------------------------------------------------------------------------------
# export


def test_export_csv_jsonl_parquet(small_db, tmp_path):
    import csv

    n_spans = db_rows(small_db, "SELECT COUNT(*) FROM spans")[0][0]
    assert n_spans > 0
    want = db_rows(small_db, 'SELECT doc_id, outlet, date, technique, start, "end", score, text FROM span_view ORDER BY document_id, start, span_id')
    for fmt in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"spans.{fmt}"
        res = run_cli("corpus", "export", "--db", small_db, "--format", fmt, "-o", out)
        assert res.rc == 0, res.stderr
        assert f"wrote {n_spans} spans" in res.stderr
        if fmt == "csv":
            with open(out, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        elif fmt == "jsonl":
            rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        else:
            import pyarrow.parquet as pq

            rows = pq.read_table(out).to_pylist()
        assert len(rows) == n_spans
        assert list(rows[0]) == list(export.EXPORT_COLUMNS)
        got = [(r["doc_id"], r["outlet"] or None, r["date"] or None, r["technique"], int(r["start"]), int(r["end"]), float(r["score"]), r["text"]) for r in rows]
        for g, w in zip(got, want):
            assert g[:6] == w[:6] and g[7] == w[7]
            assert abs(g[6] - w[6]) < 1e-12
    res = run_cli("corpus", "export", "--db", small_db, "--format", "xml", "-o", tmp_path / "x.xml")
    assert res.rc == 2 and "choose one of parquet, csv, jsonl" in res.stderr


def test_export_csv_guards_formula_cells(model, tmp_path):
    import csv

    feed = tmp_path / "feed.jsonl"
    text = "The corrupt, disgraceful mayor betrayed every honest family in this city. Shameful!"
    feed.write_text(json.dumps({"id": "=HYPERLINK(\"http://x\")", "text": text}) + "\n", encoding="utf-8")
    db = tmp_path / "f.sqlite"
    assert runner.run(db, [str(feed)], model=model).failed == 0
    out = tmp_path / "spans.csv"
    res = run_cli("corpus", "export", "--db", db, "--format", "csv", "-o", out)
    assert res.rc == 0, res.stderr
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "the model finds no span in an obviously loaded sentence"
    assert {r["doc_id"] for r in rows} == {"'=HYPERLINK(\"http://x\")"}
    assert all(text[int(r["start"]) : int(r["end"])] == r["text"] for r in rows)  # ordinary cells unchanged


# ----------------------------------------------------------------------------------------------------------
# the static site


def test_report_site_is_self_contained_and_escaped(tmp_path, model):
    hostile = '<script>alert("x")</script>'
    src = tmp_path / "in.jsonl"
    recs = [
        {"id": "evil<1>", "text": "These corrupt traitors are destroying our great city! The vote passed 5 to 2.",
         "site": hostile, "title": '<img src=x onerror=alert(1)>', "date": "2024-05-01"},
        {"id": "ok-2", "text": "Every true patriot knows the bridge plan is what our nation stands for.", "site": "Bugle", "date": "2024-06-01"},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"")
    db = tmp_path / "site.sqlite"
    runner.run(db, [str(src), str(tmp_path / "bad.txt")], model=model)
    # a failure message with markup in the file name must be escaped too
    conn = connect(db)
    conn.execute("BEGIN")
    rows.record_failure(conn, "/in/<b>bold</b>.txt", "", "empty")
    conn.execute("COMMIT")
    conn.close()
    res = run_cli("corpus", "report", "--db", db, "-o", tmp_path / "site", "--examples", "5")
    assert res.rc == 0, res.stderr
    site = tmp_path / "site"
    pages = sorted(site.rglob("*.html"))
    names = {p.relative_to(site).as_posix() for p in pages}
    assert "index.html" in names
    assert any(n.startswith("outlets/") for n in names) and any(n.startswith("techniques/") for n in names)
    articles = [n for n in names if n.startswith("articles/") and not n.endswith("/index.html")]
    assert len(articles) == 2
    for p in pages:
        html = p.read_text(encoding="utf-8")
        assert "Content-Security-Policy" in html and "default-src 'none'" in html, p
        assert not re.search(r"""(?:src|href|action)\s*=\s*["']?(?:https?:)?//""", html, re.I), p
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold</b>" not in html, p
        # every local link resolves
        for href in re.findall(r'href="([^"#]+)"', html):
            assert (p.parent / href).resolve().is_file(), (p, href)
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in index
    assert "&lt;b&gt;bold&lt;/b&gt;" in index
    loaded = (site / "techniques" / "Loaded_Language.html").read_text(encoding="utf-8")
    assert "<mark>" in loaded


# ----------------------------------------------------------------------------------------------------------
# shards import (the Ray engine's output format, written here without Ray)


def test_import_shards_matches_local_run(small_corpus, small_db, model, tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow (propscan[corpus]) is not installed")
    import pyarrow.parquet as pq

    from propscan.pipeline.analyze import analyze
    from propscan.pipeline.ingest import iter_documents

    out_rows, failures = [], []
    for item in iter_documents(small_corpus["inputs"]):
        if isinstance(item, Document):
            r = rows.doc_row(item)
            a = analyze(item, model=model)
            out_rows.append(shards.shard_row(shards.docrow_dict(r), rows.result_from_analysis(a, True, "ray"), KEY_FOR(model)))
        else:
            failures.append({"source": item.source, "doc_id": "", "error": item.problem, "at": "2024-01-01T00:00:00Z"})
    folder = tmp_path / "shards"
    folder.mkdir()
    half = len(out_rows) // 2
    pq.write_table(pa.Table.from_pylist(out_rows[:half], schema=shards.shard_schema()), folder / "part-a-00000.parquet")
    pq.write_table(pa.Table.from_pylist(out_rows[half:], schema=shards.shard_schema()), folder / "part-a-00001.parquet")
    pq.write_table(pa.Table.from_pylist(failures, schema=shards.failure_schema()), folder / "failures-a.parquet")
    db = tmp_path / "imported.sqlite"
    res = run_cli("corpus", "import", "--db", db, folder)
    assert res.rc == 0, res.stderr
    assert f"{len(out_rows)} analyses added" in res.stderr
    assert_same_results(small_db, db)
    assert db_rows(db, "SELECT COUNT(*) FROM failures")[0][0] == 2
    res = run_cli("corpus", "import", "--db", db, folder)  # idempotent
    assert res.rc == 0 and "0 analyses added" in res.stderr
    assert db_rows(db, "SELECT COUNT(*) FROM analyses")[0][0] == len(out_rows)


def KEY_FOR(model) -> SetKey:
    return SetKey(model.name, model.version, None, True)


# ----------------------------------------------------------------------------------------------------------
# migrations

V1_ROWS = [
    "INSERT INTO documents (id, doc_id, sha256, source, outlet, date, title, metadata, text, n_words, n_sentences, added)"
    " VALUES (1, 'a', 'h1', 'a.txt', 'X', '2024-01-01', 't', '{}', 'one two. three four.', 4, 2, '2024-01-01')",
    "INSERT INTO analyses (id, document_id, model_name, model_version, threshold, clean, score, n_spans, n_sentences, created)"
    " VALUES (1, 1, 'm', '1', NULL, 1, 0.5, 1, 2, '2024-01-01')",
    "INSERT INTO spans (analysis_id, technique, start, \"end\", score, text) VALUES (1, 'Doubt', 0, 3, 0.7, 'one')",
    "INSERT INTO sentences (analysis_id, start, \"end\", score) VALUES (1, 0, 8, 0.7)",
    "INSERT INTO sentences (analysis_id, start, \"end\", score) VALUES (1, 9, 20, 0.1)",
    "INSERT INTO failures (source, doc_id, error, at) VALUES ('b.txt', '', 'empty', '2024-01-01')",
]


def test_old_database_is_upgraded(tmp_path):
    db = tmp_path / "old.sqlite"
    conn = connect(db, target=1)
    assert database.user_version(conn) == 1
    for sql in V1_ROWS:
        conn.execute(sql)
    conn.close()
    conn = connect(db)
    assert database.user_version(conn) == database.SCHEMA_VERSION == len(database.MIGRATIONS)
    assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == list(range(1, database.SCHEMA_VERSION + 1))
    assert conn.execute('SELECT start, n_spans FROM sentences ORDER BY start').fetchall() == [(0, 1), (9, 0)]
    assert conn.execute("SELECT n_sentences_hit FROM analyses").fetchone()[0] == 1
    assert conn.execute("SELECT attempts FROM failures").fetchone()[0] == 1
    assert conn.execute("SELECT doc_id, outlet, technique, text FROM span_view").fetchall() == [("a", "X", "Doubt", "one")]
    st = stats.compute_stats(conn, "outlet")
    assert st.total.share_sentences == 0.5 and st.total.spans == 1
    conn.close()
    # the CLI upgrades too, and a second open changes nothing
    res = run_cli("corpus", "stats", "--db", db, "--json")
    assert res.rc == 0 and json.loads(res.stdout)["total"]["spans"] == 1


def test_newer_or_foreign_database_is_refused(tmp_path):
    newer = tmp_path / "newer.sqlite"
    c = sqlite3.connect(newer)
    c.execute(f"PRAGMA user_version = {database.SCHEMA_VERSION + 1}")
    c.close()
    with pytest.raises(CorpusError, match="newer than this propscan"):
        connect(newer)
    foreign = tmp_path / "foreign.sqlite"
    c = sqlite3.connect(foreign)
    c.execute("CREATE TABLE t (x)")
    c.close()
    with pytest.raises(CorpusError, match="not a propscan corpus database"):
        connect(foreign)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(CorpusError, match="not a usable SQLite database"):
        connect(junk)


def test_a_failing_insert_leaves_no_partial_document(tmp_path):
    """A document whose rows fail half-way (here: a NOT NULL violation in its second span) leaves nothing."""
    db = tmp_path / "atomic.sqlite"
    conn = connect(db)
    text = "one two three"
    good = _res([("Doubt", 0, 3, 0.5)], [(0, 13)])
    bad = Result(KEY, 0.5, [("Doubt", 0, 3, 0.5, "{}"), (None, 4, 7, 0.5, "{}")], [(0, 13, 0.1)])  # type: ignore[list-item]
    conn.execute("BEGIN")
    assert rows._insert(conn, _doc("ok", text, "X", None), good)
    with pytest.raises(sqlite3.IntegrityError):
        rows._insert(conn, _doc("bad", text + "!", "X", None), bad)
    conn.execute("COMMIT")
    assert conn.execute("SELECT doc_id FROM documents").fetchall() == [("ok",)]
    assert conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM analyses").fetchone()[0] == 1


# ----------------------------------------------------------------------------------------------------------
# kill -9 in mid-run, several times, then finish: the same database as an uninterrupted run


def _cli_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TERM")}
    env["NO_COLOR"] = "1"
    return env


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return db_rows(db, "SELECT COUNT(*) FROM analyses")[0][0]
    except sqlite3.OperationalError:  # not created yet, or the schema is being written
        return 0


def _check_consistent(db: Path) -> None:
    assert db_rows(db, "PRAGMA integrity_check")[0][0] == "ok"
    assert db_rows(db, "PRAGMA foreign_key_check") == []
    # no half-written analysis: the row counts agree with what the analysis row says
    assert db_rows(db, "SELECT COUNT(*) FROM analyses a WHERE n_spans != (SELECT COUNT(*) FROM spans s WHERE s.analysis_id = a.id)")[0][0] == 0
    assert db_rows(db, "SELECT COUNT(*) FROM analyses a WHERE n_sentences != (SELECT COUNT(*) FROM sentences s WHERE s.analysis_id = a.id)")[0][0] == 0
    # no document without its analysis, no document twice
    assert db_rows(db, "SELECT COUNT(*) FROM documents d WHERE NOT EXISTS (SELECT 1 FROM analyses a WHERE a.document_id = d.id)")[0][0] == 0
    assert db_rows(db, "SELECT COUNT(*) FROM (SELECT doc_id, sha256 FROM documents GROUP BY doc_id, sha256 HAVING COUNT(*) > 1)")[0][0] == 0


def test_kill_nine_and_resume(tmp_path):
    n_ptc = copy_ptc(tmp_path / "in" / "ptc-dev", min(75, KILL_DOCS // 20))
    n_syn = write_synthetic(tmp_path / "in", KILL_DOCS - n_ptc, seed=11, duplicates=10)
    add_bad_inputs(tmp_path / "in" / "bad")
    n_docs = n_syn + n_ptc
    cmd = [sys.executable, "-m", "propscan", "corpus", "run", str(tmp_path / "in"), "--batch", "16"]
    seed = int(os.environ.get("PROPSCAN_KILL_SEED", time.time_ns() % 100_000))
    rnd = random.Random(seed)

    t0 = time.perf_counter()
    ref = tmp_path / "ref.sqlite"
    done = subprocess.run(cmd + ["--db", str(ref)], capture_output=True, env=_cli_env(), timeout=1800)
    assert done.returncode == 0, done.stderr.decode()
    t_ref = time.perf_counter() - t0
    assert _count(ref) == n_docs

    db = tmp_path / "killed.sqlite"
    kills, counts = 0, []
    for _ in range(3):
        before = _count(db)
        proc = subprocess.Popen(cmd + ["--db", str(db)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_cli_env())
        deadline = time.monotonic() + 300
        while proc.poll() is None and _count(db) <= before and time.monotonic() < deadline:
            time.sleep(0.1)  # wait until this run has committed something
        time.sleep(rnd.uniform(1.0, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        _check_consistent(db)
        counts.append(_count(db))
    assert kills >= 1, f"every run finished before its kill (seed {seed}); use more PROPSCAN_KILL_TEST_DOCS"
    assert counts[0] < n_docs, f"the first kill came after the end (seed {seed})"
    assert counts == sorted(counts), counts  # progress is never lost
    done = subprocess.run(cmd + ["--db", str(db)], capture_output=True, env=_cli_env(), timeout=1800)
    assert done.returncode == 0, done.stderr.decode()
    _check_consistent(db)
    assert _count(db) == n_docs
    assert db_rows(db, "SELECT COUNT(*) FROM documents")[0][0] == n_docs
    assert_same_results(ref, db)
    fails = lambda d: sorted((Path(s).name, e) for s, e in db_rows(d, "SELECT source, error FROM failures"))  # noqa: E731
    assert fails(db) == fails(ref) == [("binary.txt", "binary file, not text"), ("empty.txt", "empty")]
    print(
        f"\nkill test: {n_docs} documents ({n_ptc} PTC), seed {seed}, {kills} kills at {counts} analyses; "
        f"uninterrupted run {t_ref:.1f}s ({n_docs / t_ref:.1f} docs/s), whole test {time.perf_counter() - t0:.1f}s"
    )


def test_plain_text_documents_are_titled_by_their_headline():
    from propscan.corpus.rows import doc_row
    from propscan.document import HEADLINE_CHARS

    assert doc_row(Document("783", "\n  Trump Tells  Rally Crowd: 'We Will Win'\n\nBody text here.")).title == "Trump Tells Rally Crowd: 'We Will Win'"
    assert doc_row(Document("1", "x" * (HEADLINE_CHARS + 1) + "\nmore")).title is None  # a paragraph, not a headline
    assert doc_row(Document("2", "Body", {"title": "From the page"})).title == "From the page"


def test_the_documents_a_run_counts_before_it_starts_are_those_it_reads(tmp_path):
    """The progress bar's total: every text file, every JSONL record, and each PDF-like file, which the
    run records as one failure."""
    from propscan.corpus.runner import count_documents
    from propscan.pipeline.ingest import iter_documents

    (tmp_path / "a.txt").write_text("The council lied again.", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"text": "One."}\n\n{"text": "Two."}\n', encoding="utf-8")
    (tmp_path / "c.pdf").write_bytes(b"%PDF-1.7\n")
    (tmp_path / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert count_documents([str(tmp_path)]) == len(list(iter_documents([tmp_path]))) == 4
    assert count_documents([str(tmp_path)], "text") == len(list(iter_documents([tmp_path], input_format="text"))) == 1
