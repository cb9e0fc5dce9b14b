"""Tests for propscan.ptc: PTC article folders and FLC/TC / SI label files."""

from __future__ import annotations

from pathlib import Path

import pytest

from propscan.errors import InputError, PropscanError
from propscan.ptc import (
    Label,
    article_id_for,
    format_flc,
    format_si,
    parse_label_line,
    read_article,
    read_articles,
    read_labels,
    write_labels,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
PTC_DEV = DATA / "ptc" / "dev"

ART_1 = "Title line\n\nThe reckless, shameful vote was a disgrace.\nEveryone knows it!\n"
# non-ASCII and CRLF: offsets are code points into the text as stored (CRLF kept as two characters)
ART_2 = "Le maire a été «irresponsable» 😡.\r\nC'est un scandale — 这是可耻的.\r\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture
def articles_dir(tmp_path: Path) -> Path:
    d = tmp_path / "articles"
    write(d / "article111.txt", ART_1)
    write(d / "article222.txt", ART_2)
    write(d / "notes.txt", "plain name")
    write(d / "README.md", "not an article")
    return d


@pytest.fixture
def articles(articles_dir: Path) -> dict[str, str]:
    return read_articles(articles_dir)


def span(text: str, needle: str) -> tuple[int, int]:
    s = text.index(needle)
    return s, s + len(needle)


def flc_rows() -> list[Label]:
    rows = []
    for aid, text, needle, tech in [
        ("111", ART_1, "reckless, shameful", "Loaded_Language"),
        ("111", ART_1, "disgrace", "Name_Calling,Labeling"),
        ("111", ART_1, "Everyone knows it!", "Bandwagon,Reductio_ad_hitlerum"),
        ("222", ART_2, "irresponsable", "Name_Calling,Labeling"),
        ("222", ART_2, "这是可耻的", "Loaded_Language"),
    ]:
        s, e = span(text, needle)
        rows.append(Label(aid, s, e, tech))
    return rows


# ---------------------------------------------------------------- articles


@pytest.mark.parametrize(
    "name, expected",
    [
        ("article111.txt", "111"),
        ("article730081389.txt", "730081389"),
        ("articleabc.txt", "abc"),
        ("article.txt", "article"),  # nothing after "article": falls back to the stem
        ("notes.txt", "notes"),
        ("Article111.txt", "Article111"),
        ("article111.txt.bak", "article111.txt"),
        ("my_article111.txt", "my_article111"),
    ],
)
def test_article_id_rule(name, expected):
    assert article_id_for(Path("/x") / name) == expected


def test_read_articles(articles_dir):
    arts = read_articles(articles_dir)
    assert arts == {"111": ART_1, "222": ART_2, "notes": "plain name"}


def test_read_article_keeps_crlf_and_code_points(articles):
    text = articles["222"]
    assert "\r\n" in text
    assert text == ART_2
    s, e = span(text, "这是可耻的")
    assert text[s:e] == "这是可耻的"


def test_read_articles_not_a_folder(tmp_path):
    with pytest.raises(InputError) as ei:
        read_articles(tmp_path / "missing")
    assert "missing" in str(ei.value)
    f = write(tmp_path / "file.txt", "x")
    with pytest.raises(InputError):
        read_articles(f)


def test_read_articles_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty" / "a.md", "x")
    with pytest.raises(InputError, match="no .txt"):
        read_articles(tmp_path / "empty")


def test_read_article_bad_utf8(tmp_path):
    p = tmp_path / "article9.txt"
    p.write_bytes(b"caf\xe9 latin-1")
    with pytest.raises(InputError) as ei:
        read_article(p)
    assert str(p) in str(ei.value) and "UTF-8" in str(ei.value)


def test_input_error_is_a_propscan_error():
    e = InputError("f.labels:3", "bad")
    assert isinstance(e, PropscanError)
    assert str(e) == "f.labels:3: bad"
    assert (e.source, e.problem) == ("f.labels:3", "bad")


# ---------------------------------------------------------------- reading labels


def test_read_flc_labels(tmp_path, articles):
    rows = flc_rows()
    lines = [f"{r.article_id}\t{r.technique}\t{r.start}\t{r.end}" for r in rows]
    f = write(tmp_path / "x.labels", "\n".join(lines[:2]) + "\n\n   \n" + "\r\n".join(lines[2:]) + "\r\n")
    got = read_labels(f, articles)
    assert got == rows
    for r in got:
        assert articles[r.article_id][r.start : r.end]
    assert articles["222"][got[4].start : got[4].end] == "这是可耻的"
    # without articles no offset check, same rows
    assert read_labels(f) == rows
    assert read_labels(str(f)) == rows


def test_read_si_labels(tmp_path, articles):
    rows = [Label(r.article_id, r.start, r.end) for r in flc_rows()]
    f = write(tmp_path / "x-si.labels", "".join(f"{r.article_id}\t{r.start}\t{r.end}\n" for r in rows))
    got = read_labels(f, articles)
    assert got == rows
    assert all(r.technique is None for r in got)


def test_read_labels_folder_of_per_article_files(tmp_path, articles):
    rows = flc_rows()
    d = tmp_path / "labels"
    write(d / "article111.task-flc-tc.labels", "".join(format_flc(r for r in rows if r.article_id == "111")))
    write(d / "article222.task-flc-tc.labels", "".join(format_flc(r for r in rows if r.article_id == "222")))
    write(d / "article333.task-flc-tc.labels", "")  # an article with no techniques
    write(d / "README.txt", "ignored: not a .labels file\n")
    got = read_labels(d, articles)
    assert sorted(got) == sorted(rows)


def test_read_labels_empty_folder(tmp_path):
    (tmp_path / "labels").mkdir()
    with pytest.raises(InputError, match="no .labels"):
        read_labels(tmp_path / "labels")


def test_read_labels_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_labels(tmp_path / "nope.labels")


def test_read_labels_bad_utf8(tmp_path):
    f = tmp_path / "bad.labels"
    f.write_bytes(b"111\tDoubt\t0\t3\n\xff\xfe\n")
    with pytest.raises(InputError) as ei:
        read_labels(f)
    assert str(f) in str(ei.value)


# ---------------------------------------------------------------- bad rows name file:line

GOOD = "111\tLoaded_Language\t0\t5"


@pytest.mark.parametrize(
    "bad, message",
    [
        ("111\tLoaded_Language\t0", "integers"),  # 3 columns parse as SI: "Loaded_Language" is no offset
        ("111\t0", "columns"),
        ("111", "columns"),
        ("111\tLoaded_Language\t0\t5\textra", "columns"),
        ("111\tLoaded_Language\tzero\t5", "integers"),
        ("111\tLoaded_Language\t0\t5.5", "integers"),
        ("111\t0\tend", "integers"),
        ("111\tLoaded_Language\t5\t5", "start < end"),
        ("111\tLoaded_Language\t9\t5", "start < end"),
        ("111\tLoaded_Language\t-1\t5", "start < end"),
        ("111\t7\t7", "start < end"),
        ("111\tPropaganda\t0\t5", "unknown technique"),
        ("111\tBandwagon\t0\t5", "unknown technique"),  # a PTC-2019 name is not a 2020 label
        ("111\tloaded_language\t0\t5", "unknown technique"),
        (f"111\tLoaded_Language\t0\t{len(ART_1) + 1}", "past the end"),
        (f"222\t{len(ART_2) - 1}\t{len(ART_2) + 1}", "past the end"),
        ("999\tLoaded_Language\t0\t5", "not in the articles"),
        ("999\t0\t5", "not in the articles"),
    ],
)
def test_bad_row_names_file_and_line(tmp_path, articles, bad, message):
    # the bad row is on line 4: a good row, a blank line, another good row, then the bad one
    f = write(tmp_path / "bad.labels", f"{GOOD}\n\n{GOOD}\n{bad}\n{GOOD}\n")
    with pytest.raises(InputError) as ei:
        read_labels(f, articles)
    msg = str(ei.value)
    assert msg.startswith(f"{f}:4: "), msg
    assert ei.value.source == f"{f}:4"
    assert message in msg, msg


def test_bad_row_in_folder_names_that_file(tmp_path, articles):
    d = tmp_path / "labels"
    write(d / "article111.task-flc-tc.labels", f"{GOOD}\n")
    bad_file = write(d / "article222.task-flc-tc.labels", "222\tDoubt\t0\t3\n222\tDoubt\t3\t1\n")
    with pytest.raises(InputError) as ei:
        read_labels(d, articles)
    assert str(ei.value).startswith(f"{bad_file}:2: ")


def test_span_at_exact_end_of_article_is_fine(tmp_path, articles):
    f = write(tmp_path / "end.labels", f"111\tSlogans\t{len(ART_1) - 3}\t{len(ART_1)}\n")
    assert read_labels(f, articles) == [Label("111", len(ART_1) - 3, len(ART_1), "Slogans")]


def test_offset_check_counts_code_points_not_bytes(tmp_path, articles):
    n = len(ART_2)
    assert len(ART_2.encode("utf-8")) > n
    ok = write(tmp_path / "ok.labels", f"222\t0\t{n}\n")
    assert read_labels(ok, articles) == [Label("222", 0, n)]
    bad = write(tmp_path / "bad.labels", f"222\t0\t{n + 1}\n")
    with pytest.raises(InputError, match="past the end"):
        read_labels(bad, articles)


def test_parse_label_line_directly():
    assert parse_label_line("1\tDoubt\t2\t4\n", "w") == Label("1", 2, 4, "Doubt")
    assert parse_label_line("1\t2\t4\r\n", "w") == Label("1", 2, 4, None)
    with pytest.raises(InputError) as ei:
        parse_label_line("1\t4\t2", "somewhere:7")
    assert str(ei.value).startswith("somewhere:7: ")


# ---------------------------------------------------------------- writing labels


def test_write_labels_round_trips_flc(tmp_path, articles):
    rows = flc_rows()
    out = tmp_path / "out" / "pred.labels"
    write_labels(out, rows)
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"111\tLoaded_Language\t{rows[0].start}\t{rows[0].end}"
    assert text.endswith("\n") and text.count("\n") == len(rows)
    assert read_labels(out, articles) == rows
    assert list(tmp_path.joinpath("out").iterdir()) == [out]  # no temp file left behind


def test_write_labels_round_trips_si(tmp_path, articles):
    rows = flc_rows()
    out = tmp_path / "pred-si.labels"
    write_labels(out, rows, si=True)
    assert all(len(line.split("\t")) == 3 for line in out.read_text(encoding="utf-8").splitlines())
    assert read_labels(out, articles) == [Label(r.article_id, r.start, r.end) for r in rows]


def test_write_labels_empty_and_overwrite(tmp_path):
    out = tmp_path / "p.labels"
    write_labels(out, [Label("1", 0, 1, "Doubt")])
    write_labels(out, [])
    assert out.read_text(encoding="utf-8") == ""


def test_format_functions():
    r = Label("7", 1, 3, "Slogans")
    assert list(format_flc([r])) == ["7\tSlogans\t1\t3\n"]
    assert list(format_si([r])) == ["7\t1\t3\n"]


# ---------------------------------------------------------------- the real PTC dev set


@pytest.mark.skipif(
    not (PTC_DEV / "dev-articles").is_dir() or not (PTC_DEV / "dev-task-flc-tc.labels").exists(),
    reason="PTC dev set not present",
)
def test_real_ptc_dev(tmp_path):
    arts = read_articles(PTC_DEV / "dev-articles")
    assert len(arts) == 75
    assert all(aid.isdigit() for aid in arts)
    labels = read_labels(PTC_DEV / "dev-task-flc-tc.labels", arts)
    assert len(labels) == 1063
    for lab in labels:
        t = arts[lab.article_id][lab.start : lab.end]
        assert t, lab
        assert not t.startswith(" ") and not t.endswith(" "), (lab, t)
    # round-trip through write_labels
    out = tmp_path / "dev.labels"
    write_labels(out, labels)
    assert read_labels(out, arts) == labels
    # the per-article folder holds the same rows
    folder = PTC_DEV / "dev-labels-task-flc-tc"
    if folder.is_dir():
        assert sorted(read_labels(folder, arts)) == sorted(labels)
