"""``propscan corpus run --engine ray``: the same results as the local engine, on a local Ray (2 CPUs).

Skipped when ray is not installed (``pip install 'propscan[ray]'``; ``make test`` installs it with the
test extra). Runs the real CLI in subprocesses, so Ray's processes never live in the pytest process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli
from propscan.corpus import runner
from test_corpus import add_bad_inputs, assert_same_results, copy_ptc, db_rows, write_synthetic

pytest.importorskip("ray", reason="ray is not installed (pip install 'propscan[ray]')")
pytest.importorskip("ray.data", reason="ray[data] is not installed (pip install 'propscan[ray]')")
pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'propscan[ray]')")


@pytest.fixture(scope="module")
def ray_corpus(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("raycorpus")
    n = write_synthetic(base / "in", 16, seed=3, duplicates=2)
    n += copy_ptc(base / "in" / "ptc-dev", 4)
    add_bad_inputs(base / "in" / "bad")
    return {"base": base, "inputs": [str(base / "in")], "n_docs": n}


def test_ray_engine_matches_local_engine(ray_corpus, model):
    base = ray_corpus["base"]
    local = base / "local.sqlite"
    s = runner.run(local, ray_corpus["inputs"], model=model)
    assert s.read == ray_corpus["n_docs"] and s.failed == 2

    shards = base / "shards"
    ray_args = ["--engine", "ray", "--shards", shards, "--num-cpus", "2", "--concurrency", "2", "--batch", "4", "--chunk", "12"]
    res = run_cli("corpus", "run", *ray_corpus["inputs"], *ray_args, timeout=600)
    assert res.rc == 0, res.stderr
    assert "Traceback" not in res.stderr
    parts = sorted(p.name for p in shards.glob("part-*.parquet"))
    assert len(parts) == 2, parts  # 20 documents in chunks of 12
    assert len(list(shards.glob("failures-*.parquet"))) == 1

    db = base / "ray.sqlite"
    res = run_cli("corpus", "import", "--db", db, shards)
    assert res.rc == 0, res.stderr
    assert f"{ray_corpus['n_docs']} analyses added" in res.stderr and "2 failures recorded" in res.stderr
    assert_same_results(local, db)  # same spans and sentences, scores to 1e-6
    assert {r[0] for r in db_rows(db, "SELECT engine FROM analyses")} == {"ray"}
    assert sorted(Path(s).name for (s,) in db_rows(db, "SELECT source FROM failures")) == ["binary.txt", "empty.txt"]

    # importing again adds nothing; running again with the same shards folder analyses nothing
    res = run_cli("corpus", "import", "--db", db, shards)
    assert res.rc == 0 and "0 analyses added" in res.stderr
    res = run_cli("corpus", "run", *ray_corpus["inputs"], *ray_args, "--db", db, timeout=600)
    assert res.rc == 0, res.stderr
    assert "0 analysed" in res.stderr and f"{ray_corpus['n_docs']} already in the database" in res.stderr
    assert sorted(p.name for p in shards.glob("part-*.parquet")) == parts
    assert db_rows(db, "SELECT COUNT(*) FROM analyses")[0][0] == ray_corpus["n_docs"]


def test_ray_engine_needs_a_shards_folder(tmp_path):
    res = run_cli("corpus", "run", tmp_path, "--engine", "ray")
    assert res.rc == 2 and "--shards" in res.stderr and "Traceback" not in res.stderr
