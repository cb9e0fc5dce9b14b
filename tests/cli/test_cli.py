"""The real command line, run in a subprocess: exit codes, one-line errors, output formats, evaluate.

Nothing here depends on the particular spans of the shipped (provisional) model: only on behaviour and
invariants that any model must satisfy.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SCHEMA, require_train_extra, run_cli
from propscan.techniques import TECHNIQUE_IDS

SUMMARY = re.compile(r"^\d+ read, \d+ analysed, \d+ skipped$")

LOADED = (
    "Traitors in Parliament\n\n"
    "These traitors and vile criminals are destroying our great nation!\n"
    "The so-called experts are lying to you, as always.\n"
    "Everyone knows the corrupt elite will never stop until our country is ruined.\n"
)
LOADED_2 = (
    "A disgrace\n\n"
    "The mayor's shameful, reckless decision is an insult to every decent citizen.\n"
    "Only a fool would believe a word these crooks say.\n"
)
LOADED_3 = (
    "Stand up now\n\n"
    "Our brave heroes will never surrender to these evil, cowardly thugs.\n"
    "Make our nation great again before it is too late!\n"
)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def no_traceback(res) -> None:
    assert "Traceback" not in res.stdout, res.stdout
    assert "Traceback" not in res.stderr, res.stderr


def assert_one_line_error(res, name: str, problem: str, only: bool = True) -> None:
    """Exactly one stderr line names the file and it holds the problem; with ``only``, every other stderr
    line is the run summary."""
    lines = res.err_lines
    naming = [line for line in lines if name in line]
    assert len(naming) == 1, f"expected one line naming {name!r}, got:\n{res.stderr}"
    assert problem.lower() in naming[0].lower(), f"{problem!r} not in {naming[0]!r}"
    others = [line for line in lines if name not in line]
    assert not only or all(SUMMARY.match(line.strip()) for line in others), f"unexpected stderr lines:\n{res.stderr}"


def covered(spans: list[dict]) -> set[int]:
    out: set[int] = set()
    for s in spans:
        out.update(range(s["start"], s["end"]))
    return out


def check_analysis(d: dict, text: str | None = None) -> None:
    """An analysis object: schema-valid, spans inside the text, span texts are text slices."""
    import jsonschema

    jsonschema.validate(d, json.loads(SCHEMA.read_text(encoding="utf-8")))
    doc_text = d["document"]["text"]
    if text is not None:
        assert doc_text == text
    for s in d["spans"]:
        assert 0 <= s["start"] < s["end"] <= len(doc_text)
        assert s["text"] == doc_text[s["start"] : s["end"]]
        assert s["text"].strip() == s["text"], s
        assert s["technique"] in TECHNIQUE_IDS
        assert 0.0 <= s["score"] <= 1.0
    for s in d["sentences"]:
        assert 0 <= s["start"] < s["end"] <= len(doc_text)
    assert 0.0 <= d["score"] <= 1.0


# ----------------------------------------------------------------------------------------------------------
# bad input to analyze: one line naming the file and the problem, non-zero exit, no traceback


def _random_binary() -> bytes:
    rng = random.Random(11)
    data = bytearray(rng.randrange(256) for _ in range(4096))
    data[10:14] = b"\x00\x00\x00\x00"
    return bytes(data)


BAD_INPUTS = {
    # name: (file bytes or None for a missing path, words of the problem)
    "empty": ("empty.txt", b"", "empty"),
    "binary": ("random.bin", _random_binary(), "binary"),
    # text, then bytes that are not UTF-8 and that no legacy encoding reads cleanly
    "invalid-utf8": ("broken.txt", b"Hello world this is a text " + bytes([0xFF, 0xFE, 0xFD, 0x81, 0x8D, 0x8F, 0x90, 0x9D]) * 40, "not valid UTF-8"),
    "too-big": ("huge.txt", (b"All quiet in the harbour today. " * 160_000)[:5_000_000], "limit is 1.0 MB"),
    "missing": ("does-not-exist.txt", None, "no such file"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_analyze_bad_input_one_line_error(case: str, tmp_path: Path) -> None:
    name, data, problem = BAD_INPUTS[case]
    if data is not None:
        write(tmp_path / name, data)
    res = run_cli("analyze", name, "--format", "json", cwd=tmp_path)
    assert res.rc != 0
    no_traceback(res)
    assert res.stdout.strip() == ""
    assert_one_line_error(res, name, problem)


def test_analyze_multi_file_run_keeps_good_file(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", LOADED)
    write(tmp_path / "empty.txt", b"")
    write(tmp_path / "random.bin", _random_binary())
    res = run_cli("analyze", "empty.txt", "good.txt", "random.bin", "missing.txt", "--format", "jsonl", cwd=tmp_path)
    assert res.rc == 1
    no_traceback(res)
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    assert [r["document"]["id"] for r in rows] == ["good"]
    check_analysis(rows[0], LOADED)
    for name, problem in (("empty.txt", "empty"), ("random.bin", "binary"), ("missing.txt", "no such file")):
        assert_one_line_error(res, name, problem, only=False)
    assert len(res.err_lines) == 4, res.stderr  # three errors and the summary
    assert SUMMARY.match(res.err_lines[-1])
    assert "4 read, 1 analysed, 3 skipped" in res.stderr


def test_analyze_many_texts_side_by_side_changes_nothing(tmp_path: Path) -> None:
    """With several threads the CLI analyses the next texts while it decodes one; the output, the errors
    and their order are exactly those of a one-thread run."""
    texts = [LOADED, LOADED_2, LOADED_3, LOADED_2 + LOADED, LOADED_3 * 40]  # the last has many windows
    for i, t in enumerate(texts):
        write(tmp_path / "in" / f"d{i}.txt", t)
    write(tmp_path / "in" / "d1b.txt", b"")
    write(tmp_path / "in" / "d3b.txt", _random_binary())
    runs = {k: run_cli("analyze", "in", "--format", "jsonl", cwd=tmp_path, env_extra={"PROPSCAN_THREADS": k}) for k in ("1", "2", "3")}
    for k, res in runs.items():
        assert res.rc == 1, (k, res.stderr)
        no_traceback(res)
        assert "7 read, 5 analysed, 2 skipped" in res.stderr
    ids = [json.loads(line)["document"]["id"] for line in runs["1"].stdout.splitlines()]
    assert ids == [f"d{i}" for i in range(5)]
    assert runs["2"].stdout == runs["1"].stdout
    assert runs["3"].stdout == runs["1"].stdout
    assert runs["2"].err_lines == runs["1"].err_lines == runs["3"].err_lines


def test_analyze_error_stays_one_line_with_long_path_and_default_width(tmp_path: Path) -> None:
    folder = tmp_path / ("a_long_folder_name_" * 4)
    write(folder / "empty.txt", b"")
    res = run_cli("analyze", folder / "empty.txt", "--format", "json", columns=None)
    assert res.rc != 0
    no_traceback(res)
    assert_one_line_error(res, str(folder / "empty.txt"), "empty")


def test_analyze_error_names_file_with_square_brackets(tmp_path: Path) -> None:
    write(tmp_path / "report [draft].txt", b"")
    res = run_cli("analyze", "report [draft].txt", "--format", "json", cwd=tmp_path)
    assert res.rc != 0
    no_traceback(res)
    assert_one_line_error(res, "report [draft].txt", "empty")


# ----------------------------------------------------------------------------------------------------------
# bad labels for evaluate (own small articles: no shared data needed)

ART_ID = "111"


@pytest.fixture
def small_ptc(tmp_path: Path) -> tuple[Path, Path]:
    arts = tmp_path / "articles"
    write(arts / f"article{ART_ID}.txt", LOADED)
    write(arts / "article222.txt", LOADED_2)
    good = write(tmp_path / "good.labels", f"{ART_ID}\tLoaded_Language\t52\t56\n222\tLoaded_Language\t24\t32\n")
    return arts, good


BAD_ROWS = {
    "two-columns": (f"{ART_ID}\tLoaded_Language\n", "columns"),
    "five-columns": (f"{ART_ID}\tLoaded_Language\t5\t9\textra\n", "columns"),
    "non-integer": (f"{ART_ID}\tLoaded_Language\tfive\t9\n", "integers"),
    "beyond-article": (f"{ART_ID}\tLoaded_Language\t5\t{len(LOADED) + 50}\n", "past the end"),
    "unknown-technique": (f"{ART_ID}\tPizza_Technique\t5\t9\n", "unknown technique"),
}


@pytest.mark.parametrize("role", ["gold", "predictions"])
@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_evaluate_bad_labels_one_line_error(case: str, role: str, small_ptc, tmp_path: Path) -> None:
    arts, good = small_ptc
    row, problem = BAD_ROWS[case]
    # a good row first: the error must name the bad line (2)
    write(tmp_path / "bad.labels", f"{ART_ID}\tLoaded_Language\t52\t56\n" + row)
    args = ["evaluate", "--articles", "articles"]
    if role == "gold":
        args += ["--gold", "bad.labels"]
    else:
        args += ["--gold", "good.labels", "--predictions", "bad.labels"]
    res = run_cli(*args, cwd=tmp_path)
    assert res.rc != 0
    no_traceback(res)
    assert res.stdout.strip() == ""
    assert len(res.err_lines) == 1, res.stderr
    assert_one_line_error(res, "bad.labels:2", problem)


def test_evaluate_bad_label_with_markup_characters(small_ptc, tmp_path: Path) -> None:
    write(tmp_path / "bad.labels", f"{ART_ID}\t[/]\t5\t9\n")
    res = run_cli("evaluate", "--articles", "articles", "--gold", "bad.labels", cwd=tmp_path)
    assert res.rc != 0
    no_traceback(res)
    assert_one_line_error(res, "bad.labels:1", "unknown technique")


def test_evaluate_error_stays_one_line_with_default_width(small_ptc, tmp_path: Path) -> None:
    write(tmp_path / "bad.labels", f"{ART_ID}\tLoaded_Language\t5\t{len(LOADED) + 50}\n")
    res = run_cli("evaluate", "--articles", "articles", "--gold", "bad.labels", cwd=tmp_path, columns=None)
    assert res.rc != 0
    no_traceback(res)
    assert len(res.err_lines) == 1, res.stderr


# ----------------------------------------------------------------------------------------------------------
# output formats


@pytest.fixture
def corpus(tmp_path: Path) -> dict[str, str]:
    texts = {"101": LOADED, "202": LOADED_2, "303": LOADED_3}
    for aid, text in texts.items():
        write(tmp_path / "corpus" / f"article{aid}.txt", text)
    return texts


def parse_semeval(out: str) -> list[tuple[str, str, int, int]]:
    rows = []
    for line in out.splitlines():
        cols = line.split("\t")
        assert len(cols) == 4, line
        rows.append((cols[0], cols[1], int(cols[2]), int(cols[3])))
    return rows


def test_analyze_semeval_over_ptc_folder(corpus: dict[str, str], tmp_path: Path) -> None:
    res = run_cli("analyze", tmp_path / "corpus", "--format", "semeval")
    assert res.rc == 0, res.stderr
    no_traceback(res)
    rows = parse_semeval(res.stdout)
    assert rows, "no spans at the tuned thresholds on strongly loaded articles"
    for aid, tech, start, end in rows:
        assert aid in corpus
        assert tech in TECHNIQUE_IDS
        text = corpus[aid]
        assert 0 <= start < end <= len(text)
        assert text[start:end].strip()
    # threshold 0: every token passes, so every article has rows
    res0 = run_cli("analyze", tmp_path / "corpus", "--format", "semeval", "--threshold", "0")
    assert res0.rc == 0, res0.stderr
    rows0 = parse_semeval(res0.stdout)
    assert {r[0] for r in rows0} == set(corpus)
    for aid, _, start, end in rows0:
        assert 0 <= start < end <= len(corpus[aid]) and corpus[aid][start:end].strip()


def test_analyze_json_validates_against_schema(corpus: dict[str, str], tmp_path: Path) -> None:
    files = [tmp_path / "corpus" / f"article{aid}.txt" for aid in corpus]
    res = run_cli("analyze", *files, "--format", "json", "--threshold", "0.2")
    assert res.rc == 0, res.stderr
    no_traceback(res)
    data = json.loads(res.stdout)
    assert isinstance(data, list) and len(data) == 3
    assert [d["document"]["id"] for d in data] == list(corpus)
    for d in data:
        check_analysis(d, corpus[d["document"]["id"]])
    assert any(d["spans"] for d in data)


def test_analyze_reads_stdin(tmp_path: Path) -> None:
    res = run_cli("analyze", "-", "--format", "json", input=LOADED)
    assert res.rc == 0, res.stderr
    no_traceback(res)
    d = json.loads(res.stdout)
    assert d["document"]["id"] == "stdin"
    check_analysis(d, LOADED)


def test_analyze_output_file_is_written_without_temp_files(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", LOADED)
    out = tmp_path / "out" / "result.json"
    res = run_cli("analyze", tmp_path / "good.txt", "--format", "json", "-o", out)
    assert res.rc == 0, res.stderr
    no_traceback(res)
    assert res.stdout.strip() == ""
    check_analysis(json.loads(out.read_text(encoding="utf-8")), LOADED)
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.txt", "out"]


def test_threshold_is_monotonic(tmp_path: Path) -> None:
    """A lower threshold finds at least as much: every character covered at 0.9 is covered at 0.05.

    (The number of spans is not monotonic by design: at a low threshold neighbouring runs merge into one
    longer span, so the test compares coverage, which is.)"""
    write(tmp_path / "a.txt", LOADED + LOADED_2)
    low = json.loads(run_cli("analyze", tmp_path / "a.txt", "-f", "json", "--threshold", "0.05").stdout)
    high = json.loads(run_cli("analyze", tmp_path / "a.txt", "-f", "json", "--threshold", "0.9").stdout)
    assert low["threshold"] == 0.05 and high["threshold"] == 0.9
    assert covered(high["spans"]) <= covered(low["spans"])
    assert len(covered(low["spans"])) >= len(covered(high["spans"]))
    if high["spans"]:
        assert low["spans"]


# ----------------------------------------------------------------------------------------------------------
# evaluate on real PTC dev articles


def _table_row(out: str, label: str) -> str:
    rows = [line for line in out.splitlines() if label in line]
    assert rows, f"no {label!r} row in:\n{out}"
    return rows[0]


def test_evaluate_gold_as_predictions_is_perfect(ptc_sample, tmp_path: Path) -> None:
    res = run_cli("evaluate", "--articles", ptc_sample.articles, "--gold", ptc_sample.gold, "--predictions", ptc_sample.gold)
    assert res.rc == 0, res.stderr
    no_traceback(res)
    for label in ("SI (span identification)", "FLC (spans + technique)"):
        row = _table_row(res.stdout, label)
        assert row.count("1.0000") == 3, row  # precision, recall, F1
    res_json = run_cli(
        "evaluate", "--articles", ptc_sample.articles, "--gold", ptc_sample.gold, "--predictions", ptc_sample.gold, "--json"
    )
    d = json.loads(res_json.stdout)
    assert d["si"]["f1"] == pytest.approx(1.0) and d["flc"]["f1"] == pytest.approx(1.0)
    assert d["flc"]["n_gold"] == d["flc"]["n_pred"] == ptc_sample.n_rows


def test_evaluate_runs_the_model(ptc_sample) -> None:
    res = run_cli("evaluate", "--articles", ptc_sample.articles, "--gold", ptc_sample.gold)
    assert res.rc == 0, res.stderr
    no_traceback(res)
    for label in ("SI (span identification)", "FLC (spans + technique)", "TC (technique on gold spans"):
        row = _table_row(res.stdout, label)
        assert re.search(r"\d\.\d{4}", row), row


def test_evaluate_json(ptc_sample) -> None:
    res = run_cli("evaluate", "--articles", ptc_sample.articles, "--gold", ptc_sample.gold, "--json")
    assert res.rc == 0, res.stderr
    no_traceback(res)
    d = json.loads(res.stdout)
    assert {"si", "flc", "tc"} <= set(d)
    for key in ("si", "flc", "tc"):
        for m in ("precision", "recall", "f1"):
            assert 0.0 <= d[key][m] <= 1.0
    assert d["flc"]["n_gold"] == ptc_sample.n_rows
    assert d["tc"]["n_pred"] == d["tc"]["n_gold"] == ptc_sample.n_rows  # one technique per gold label
    assert set(d["flc_by_technique"]) == set(TECHNIQUE_IDS)


# ----------------------------------------------------------------------------------------------------------
# techniques, help


def test_techniques_lists_14() -> None:
    res = run_cli("techniques")
    assert res.rc == 0, res.stderr
    for tid in TECHNIQUE_IDS:
        assert tid in res.stdout
    assert len(TECHNIQUE_IDS) == 14


def test_techniques_json() -> None:
    res = run_cli("techniques", "--json")
    assert res.rc == 0, res.stderr
    items = json.loads(res.stdout)
    assert len(items) == 14
    assert [t["id"] for t in items] == list(TECHNIQUE_IDS)
    for t in items:
        assert t["name"] and t["definition"]


def test_help() -> None:
    res = run_cli("--help")
    assert res.rc == 0, res.stderr
    for cmd in ("analyze", "evaluate", "techniques"):
        assert cmd in res.stdout
    res = run_cli("analyze", "--help")
    assert res.rc == 0, res.stderr
    for opt in ("--format", "--threshold", "--output", "--max-bytes"):
        assert opt in res.stdout


def test_console_script() -> None:
    script = Path(sys.executable).parent / "propscan"
    if not script.exists():
        pytest.skip("propscan console script not installed next to this interpreter")
    proc = subprocess.run([str(script), "techniques", "--json"], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0
    assert len(json.loads(proc.stdout)) == 14


# ---------------------------------------------------------------------------------------------------------
# train: what it refuses before any work (the training itself needs the train extra and hours of CPU)


def _train_args(tmp_path: Path, *more: str) -> list[str]:
    arts = tmp_path / "arts"
    arts.mkdir(exist_ok=True)
    (arts / "article1.txt").write_text("Title\n\nThe corrupt mayor lied again.\n", encoding="utf-8")
    (tmp_path / "labels").write_text("1\tLoaded_Language\t11\t18\n", encoding="utf-8")
    return ["train", "--articles", str(arts), "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "out"), *more]


@pytest.mark.parametrize(
    "recipe, message",
    [
        ("{not json", "not a readable JSON recipe"),
        ('["a", "list"]', "not a train config (unknown settings: not an object)"),
        ('{"epochs": 2, "learning_rate": 1}', "unknown settings: ['learning_rate']"),
        ('{"members": [{"seed": 3}]}', "a soup member may change only epochs, extra, head_lr, lr, mask_unmapped, order_seed, teacher, teacher_span_weight, teacher_weight, transfer, transfer_limit, weak, weak_weight, not ['seed']"),
        ('{"train_config": {"extra": ["no/such/file.json"]}}', "no/such/file.json: no such extra training file"),
        ('{"members": [{"weak": ["no/such/memes.json"]}]}', "no/such/memes.json: no such extra training file"),
        ('{"train_config": {}, "tuning_rule": "narrow"}', "tuning_rule is not an object"),
        ('{"train_config": {}, "tuning_rule": {"detectors": "wide"}}', "tuning_rule: detectors 'wide' is none of all, narrow"),
        ('{"train_config": {}, "tuning_rule": {"rate_floor": -1}}', "tuning_rule: rate_floor -1 is not a number >= 0 or null"),
        ('{"train_config": {}, "tuning_rule": {"grow": 2}}', "tuning_rule: grow 2 is not a number in (0, 1]"),
        ('{"epochs": "two"}', '"epochs" is "two", not a whole number'),
        ('{"lr": true}', '"lr" is true, not a number'),
        ('{"extra": "memes.json"}', '"extra" is "memes.json", not a list of strings'),
        ('{"members": [{"order_seed": 1.5}]}', '"members[0].order_seed" is 1.5, not a whole number or null'),
    ],
)
def test_train_refuses_a_bad_recipe(tmp_path, recipe, message):
    (tmp_path / "recipe.json").write_text(recipe, encoding="utf-8")
    res = run_cli(*_train_args(tmp_path, "--recipe", str(tmp_path / "recipe.json")))
    assert res.rc == 2 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_train_refuses_a_missing_weak_file(tmp_path):
    res = run_cli(*_train_args(tmp_path, "--weak", str(tmp_path / "memes.json")))
    assert res.rc == 2 and f"{tmp_path / 'memes.json'}: no such extra training file" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "option, name, content, message",
    [
        ("--extra", "x.json", "{not json", "not a readable span-labelled file"),
        ("--extra", "x.json", '[{"text": "Crooked Hillary", "labels": ["Smears"]}]',
         "item 0 is not a span-labelled text ({text, labels}: docs/training.md, Training files)"),
        ("--weak", "w.json", '[{"text": "Crooked Hillary", "labels": [{"start": 0, "end": 7, "technique": "Smears"}]}]',
         "item 0 is not a weakly labelled text"),
        ("--weak", "w.json", '{"text": "one object, not a list"}', "a weakly labelled file is a JSON list of {text, labels} objects"),
        ("--transfer", "t.csv", "sentence,id\nHello,1\n", "not a readable transfer file (Error: no text column in its header)"),
        ("--transfer", "t.json", "[1, 2]", "not a readable transfer file (AttributeError"),
    ],
)
def test_train_reads_every_training_file_before_any_work(tmp_path, option, name, content, message):
    """A malformed --extra, --weak or --transfer file is one line naming it, before the model is built
    (the train extra is needed: the files are read once it imports)."""
    require_train_extra()
    (tmp_path / name).write_text(content, encoding="utf-8")
    teacher = ["--teacher", "fast"] if option == "--transfer" else []
    res = run_cli(*_train_args(tmp_path, option, str(tmp_path / name), *teacher))
    assert res.rc == 2 and f"{tmp_path / name}: " in res.stderr and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("fold, message", [("8", "--val-fold 8: the train articles are held out in 8 folds, 0 to 7"),
                                           ("-1", "Invalid value for '--val-fold'")])
def test_train_refuses_a_fold_outside_the_split(tmp_path, fold, message):
    res = run_cli(*_train_args(tmp_path, "--val-fold", fold))
    assert res.rc == 2 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_train_without_the_train_extra_says_so(tmp_path):
    fake = tmp_path / "site"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('No module named torch (test stand-in)')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "propscan", *_train_args(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "training needs the train extra" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--encoder", "bert-large"], "unknown base encoder 'bert-large'"),
        (["--device", "cuda"], "device 'cuda': this torch sees no CUDA GPU"),
        (["--device", "tpu"], "device 'tpu': not a torch device (auto, cpu, cuda or cuda:N)"),
        (["--device", "mps"], "device 'mps': training runs on cpu or cuda"),
    ],
)
def test_train_refuses_an_unknown_encoder_or_device(tmp_path, args, message):
    require_train_extra()  # the encoder and device are checked once the train extra imports
    import torch

    if torch.cuda.is_available() and "cuda" in args:
        pytest.skip("this machine has a CUDA GPU")
    res = run_cli(*_train_args(tmp_path, *args))
    assert res.rc == 2 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_train_refuses_a_teacher_that_is_not_a_model(tmp_path):
    require_train_extra()  # the teacher is checked once the train extra imports
    res = run_cli(*_train_args(tmp_path, "--teacher", str(tmp_path)))
    assert res.rc == 2 and f"teacher {tmp_path}: no model.json, not a propscan model folder" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_train_refuses_sets_it_cannot_pair_or_would_score_unfairly(tmp_path):
    args = _train_args(tmp_path)
    res = run_cli(*args, "--articles", str(tmp_path / "arts"))  # two --articles, one --labels
    assert res.rc == 2 and "give one --labels per --articles (2 --articles, 1 --labels)" in res.stderr, res.stderr
    res = run_cli(*args, "--articles", str(tmp_path / "arts"), "--labels", str(tmp_path / "labels"))
    assert res.rc == 2 and "article 1 is in an earlier --articles folder too" in res.stderr, res.stderr
    res = run_cli(*args, "--dev-articles", str(tmp_path / "arts"), "--dev-labels", str(tmp_path / "labels"))
    assert res.rc == 2 and "1 dev articles are also training articles (say 1)" in res.stderr, res.stderr
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "article2.txt").write_text("Another text.\n", encoding="utf-8")
    (tmp_path / "dev.labels").write_text("", encoding="utf-8")
    res = run_cli(*args, "--dev-articles", str(dev), "--dev-labels", str(tmp_path / "dev.labels"), "--dev-figures-from", str(dev))
    assert res.rc == 2 and "give --dev-articles or --dev-figures-from, not both" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "model_json, message",
    [
        (None, "no readable model.json to take dev figures from"),
        ({"name": "m", "version": "1", "train_config": {}}, "not a train-only run with dev figures"),
        ({"name": "m", "version": "1", "dev": {}, "train_config": {"epochs": 99}}, "was trained with another recipe (differs in epochs)"),
        ({"name": "m", "version": "1", "dev": {}, "train_config": {"threads": 1}}, None),  # how fast it ran is no recipe
        ({"name": "m", "version": "1", "dev": {}, "train_config": {}, "tuning_rule": {"detectors": "narrow"}},
         "was tuned by another rule (differs in detectors)"),
        # a model from before the runtime block lends too: the new model then runs as it does (runtime_for)
        ({"name": "m", "version": "1", "dev": {}, "train_config": {}, "runtime": None}, None),
        ({"name": "m", "version": "1", "dev": {}, "train_config": {}, "runtime": {"last_window": "middle"}},
         "a \"runtime\" setting this propscan does not know"),
        ({"name": "m", "version": "1", "dev": {}, "train_config": {}, "quantized": "fp32"},
         "was exported in fp32, this model in int8 (--no-quantize)"),
    ],
)
def test_train_refuses_dev_figures_from_a_run_that_cannot_lend_them(tmp_path, model_json, message):
    require_train_extra()  # checked once the train extra imports, before any training
    from dataclasses import asdict

    from propscan.training.build import INT8_RUNTIME
    from propscan.training.train import TrainConfig
    from propscan.training.tune import Rule

    other = tmp_path / "other"
    other.mkdir()
    if model_json is not None:  # the default recipe and today's tuning rule but for what the case changes
        model_json["train_config"] = {**asdict(TrainConfig()), "teacher": str(tmp_path), **model_json["train_config"]}
        model_json["tuning_rule"] = {**Rule().to_json(), **model_json.get("tuning_rule", {})}
        model_json.setdefault("quantized", "int8 dynamic, per-channel")  # as this run quantises
        # the runtime a new int8 model gets, or none where the case says None
        if (runtime := model_json.pop("runtime", INT8_RUNTIME)) is not None:
            model_json["runtime"] = runtime
        (other / "model.json").write_text(json.dumps(model_json))
    res = run_cli(*_train_args(tmp_path, "--dev-figures-from", str(other), "--teacher", str(tmp_path)))
    if message is None:  # accepted: the run goes on to the next check (here a teacher that is no model)
        assert res.rc == 2 and "teacher" in res.stderr and "another recipe" not in res.stderr, res.stderr
        return
    assert res.rc == 2 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_analysis_never_imports_the_training_stack(tmp_path):
    """The runtime is onnxruntime + tokenizers + numpy: with torch, transformers and onnx made unimportable,
    analyse, evaluate and list techniques still work (whether or not the train extra is installed here)."""
    fake = tmp_path / "site"
    for name in ("torch", "transformers", "onnx", "safetensors"):
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text(f"raise ImportError('{name} imported at run time (test stand-in)')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    art = tmp_path / "articles"
    art.mkdir()
    (art / "article1.txt").write_text(LOADED, encoding="utf-8")
    gold = tmp_path / "gold.labels"
    gold.write_text("1\tName_Calling,Labeling\t30\t38\n", encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "propscan", *args], capture_output=True, text=True, env=env, timeout=120)

    res = cli("analyze", str(art / "article1.txt"), "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["spans"], "the loaded example should yield spans"
    res = cli("evaluate", "--articles", str(art), "--gold", str(gold))
    assert res.returncode == 0 and "SI" in res.stdout, res.stderr
    res = cli("techniques")
    assert res.returncode == 0 and "Loaded_Language" in res.stdout, res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--threshold-for", "Slogan=0.2"], "--threshold-for: unknown technique 'Slogan'; valid names: Loaded_Language, Name_Calling,Labeling"),
        (["--threshold-for", "Slogans=1.5"], "--threshold-for: the value for Slogans 1.5 is outside 0..1"),
        (["--threshold-for", "Slogans"], "--threshold-for: 'Slogans' is not TECHNIQUE=VALUE"),
        (["--min-confidence", "1.2"], "--min-confidence: 1.2 is outside 0..1"),
        (["--min-confidence", "-0.1"], "--min-confidence: -0.1 is outside 0..1"),
        (["--min-confidence", "much"], "--min-confidence: 'much' is not a number"),
    ],
)
@pytest.mark.parametrize("command", ["analyze", "evaluate"])
def test_bad_confidence_options_are_one_line_errors(tmp_path, args, message, command):
    (tmp_path / "a.txt").write_text("The shameful traitors lied again.", encoding="utf-8")
    where = [str(tmp_path / "a.txt")] if command == "analyze" else ["--articles", str(tmp_path), "--gold", str(tmp_path / "a.txt")]
    res = run_cli(command, *where, *args)
    assert res.rc == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_threshold_for_changes_only_that_technique(tmp_path):
    (tmp_path / "a.txt").write_text(
        "These traitors and vile criminals are destroying our great nation! The so-called experts are lying to you.",
        encoding="utf-8")
    base = json.loads(run_cli("analyze", tmp_path / "a.txt", "-f", "json").stdout)
    off = json.loads(run_cli("analyze", tmp_path / "a.txt", "-f", "json", "--threshold-for", "loaded language=1").stdout)
    assert off["threshold_for"] == {"Loaded_Language": 1.0}
    assert any(s["technique"] == "Loaded_Language" for s in base["spans"])
    assert [s for s in base["spans"] if s["technique"] != "Loaded_Language"] == off["spans"]
    same = json.loads(run_cli("analyze", tmp_path / "a.txt", "-f", "json", "--min-confidence", "0.3").stdout)
    assert same["threshold"] == 0.3 and all(s["score"] >= 0.3 for s in same["spans"])


def test_a_bad_propscan_threads_is_one_line(tmp_path):
    art = tmp_path / "a.txt"
    art.write_text("The reckless council will gut our schools.")
    res = run_cli("analyze", art, "-f", "json", env_extra={"PROPSCAN_THREADS": "two"})
    assert res.rc == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == ["error: PROPSCAN_THREADS must be a whole number of threads, 1 or more, not 'two'"]


def test_corpus_run_min_confidence_out_of_range_is_one_line(tmp_path):
    art = tmp_path / "a.txt"
    art.write_text("The reckless council will gut our schools.")
    res = run_cli("corpus", "run", art, "--db", tmp_path / "c.sqlite", "--min-confidence", "2")
    assert res.rc == 2 and res.stderr.strip().splitlines() == ["error: --min-confidence: 2 is outside 0..1"]
    assert not (tmp_path / "c.sqlite").exists()
