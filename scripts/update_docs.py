"""Refresh docs/cli.md from the real ``--help`` output of every command (between the HELP markers).

    .venv/bin/python scripts/update_docs.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

CLI_DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
COMMANDS = [[], ["analyze"], ["evaluate"], ["clean"], ["train"], ["techniques"], ["serve"], ["corpus"], ["corpus", "run"]]


def help_text(args: list[str]) -> str:
    env = dict(os.environ, COLUMNS="100", TERM="dumb", NO_COLOR="1")
    out = subprocess.run([sys.executable, "-m", "propscan", *args, "--help"], capture_output=True, text=True, env=env, check=True)
    return out.stdout.rstrip()


def main() -> None:
    blocks = [f"```\n$ propscan {' '.join(args + ['--help'])}\n{help_text(args)}\n```" for args in COMMANDS]
    CLI_DOC.write_text(_between(CLI_DOC.read_text(), "HELP", "\n\n".join(blocks)))


def _between(text: str, marker: str, body: str) -> str:
    pattern = rf"(<!-- {marker}:BEGIN -->\n).*?(<!-- {marker}:END -->)"
    return re.sub(pattern, lambda m: m.group(1) + body + "\n" + m.group(2), text, flags=re.S)


if __name__ == "__main__":
    main()
