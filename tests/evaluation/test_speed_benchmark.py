"""benchmarks/speed.py runs end to end as documented: every model in turn for --rounds rounds, the median
and the range printed (a tiny article folder of our own, the shipped fast model, no PyTorch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT = ("The council's shameful betrayal of our families is complete. These career politicians sold the park "
        "to their developer friends, and only a fool would believe their promises again.\n")


def test_rounds_take_turns_and_print_a_median_with_its_range(tmp_path):
    articles = tmp_path / "ptc" / "test" / "test-articles"
    articles.mkdir(parents=True)
    for i in range(3):
        (articles / f"article{i}.txt").write_text(TEXT * (i + 1), encoding="utf-8")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--ptc", str(tmp_path / "ptc"),
                          "--models", "fast", "fast", "--no-torch", "--rounds", "3"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| fast")]
    assert len(rows) == 2  # one row per model named
    assert all("(3 rounds)" in row for row in rows)
    lo, hi = rows[0].split("(3 rounds)")[0].split("|")[-1].split("-")
    median = float(rows[0].split("|")[2].replace(",", ""))
    assert float(lo) <= median <= float(hi)
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--rounds", "0"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "--rounds must be at least 1" in bad.stderr
