"""The docs show the real ``--help`` of every command, and the README stays a page for users."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _update_docs():
    spec = importlib.util.spec_from_file_location("update_docs", ROOT / "scripts" / "update_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_reference_is_what_update_docs_writes(tmp_path, monkeypatch):
    mod = _update_docs()
    copy = tmp_path / "cli.md"
    copy.write_text((ROOT / "docs" / "cli.md").read_text())
    monkeypatch.setattr(mod, "CLI_DOC", copy)
    mod.main()
    assert copy.read_text() == (ROOT / "docs" / "cli.md").read_text(), "docs/cli.md is stale: run python scripts/update_docs.py"


def test_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for target in re.findall(r"\]\(([^)#:]+)\)", readme):  # relative links only
        assert (ROOT / target).exists(), target
