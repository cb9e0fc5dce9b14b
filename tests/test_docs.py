"""The README shows the real ``--help`` of every command and the shipped model's card: a change to the
CLI or the model that forgets `python scripts/update_readme.py` fails here."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _update_readme():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "scripts" / "update_readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_is_what_update_readme_writes(tmp_path, monkeypatch):
    mod = _update_readme()
    copy = tmp_path / "README.md"
    copy.write_text((ROOT / "README.md").read_text())
    monkeypatch.setattr(mod, "README", copy)
    mod.main()
    assert copy.read_text() == (ROOT / "README.md").read_text(), "README is stale: run python scripts/update_readme.py"
