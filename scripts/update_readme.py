"""Refresh the README from the sources of truth: the CLI reference from the real ``--help`` output
(between the HELP markers) and the model card from the shipped MODEL_CARD.md (MODEL_CARD markers).

    .venv/bin/python scripts/update_readme.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
COMMANDS = [[], ["analyze"], ["evaluate"], ["clean"], ["train"], ["techniques"], ["serve"], ["corpus"], ["corpus", "run"]]


def help_text(args: list[str]) -> str:
    env = dict(os.environ, COLUMNS="100", TERM="dumb", NO_COLOR="1")
    out = subprocess.run([sys.executable, "-m", "propscan", *args, "--help"], capture_output=True, text=True, env=env, check=True)
    return out.stdout.rstrip()


def main() -> None:
    blocks = []
    for args in COMMANDS:
        blocks.append(f"```\n$ propscan {' '.join(args + ['--help'])}\n{help_text(args)}\n```")
    body = "\n\n".join(blocks)
    text = README.read_text()
    text = _between(text, "HELP", body)
    card = (Path(__file__).resolve().parents[1] / "src/propscan/models/propscan-minilm/MODEL_CARD.md").read_text()
    card = re.sub(r"^# ", "### ", card, flags=re.M).replace("\n## ", "\n#### ")
    README.write_text(_between(text, "MODEL_CARD", card.strip()))


def _between(text: str, marker: str, body: str) -> str:
    pattern = rf"(<!-- {marker}:BEGIN -->\n).*?(<!-- {marker}:END -->)"
    return re.sub(pattern, lambda m: m.group(1) + body + "\n" + m.group(2), text, flags=re.S)


if __name__ == "__main__":
    main()
