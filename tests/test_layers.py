"""The import graph, read from the code: imports go one way, from the command line and the server down
to the core; nothing imports the command line; no cycles. A new module must be given a layer here."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "propscan"

# lower layers never import higher ones (a module may import its own layer or any lower one)
LAYERS = {
    0: {"techniques", "errors", "document", "metrics", "calibrate", "store"},  # the data model and helpers
    1: {"ptc", "fetch", "ingest", "clean", "language", "encoding", "features", "encoders", "assemble", "detect", "model", "decode", "analyze"},  # the pipeline
    2: {"formats", "terminal", "chart", "report", "evaluate"},  # outputs and evaluation
    3: {"corpus", "corpus_ray", "corpus_site", "serve",  # applications
        "training", "training.train", "training.export", "training.tune", "training.build"},  # the [train] extra
    4: {"cli", "cli.common", "cli.corpus", "cli.main", "__main__"},  # the command line
}
LAYER = {m: k for k, mods in LAYERS.items() for m in mods}


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
    return rel.removesuffix(".__init__") if rel != "__init__" else ""


def _imports(path: Path) -> set[str]:
    """propscan modules imported anywhere in the file (top level or inside functions)."""
    mod = _module(path)
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            if node.module:
                found.add(".".join(base + node.module.split(".")))
            else:
                found.update(".".join(base + [a.name]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("propscan."):
            found.add(node.module.removeprefix("propscan."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("propscan.") for a in node.names if a.name.startswith("propscan."))
    known = {_module(p) for p in PACKAGE.rglob("*.py")}
    # "from .. import formats" names a module; "from ..corpus import run" names one too
    return {m for m in found if m in known and m not in ("", mod)}


def graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PACKAGE.rglob("*.py") if _module(p)}


def test_every_module_has_a_layer():
    assert sorted(set(graph()) - set(LAYER)) == []


def test_imports_go_down_the_layers():
    wrong = [f"{m} (layer {LAYER[m]}) imports {t} (layer {LAYER[t]})"
             for m, targets in graph().items() for t in targets if LAYER[t] > LAYER[m]]
    assert wrong == []


def test_nothing_outside_the_command_line_imports_it():
    cli = {m for m in LAYERS[4]}
    assert [m for m, targets in graph().items() if m not in cli and targets & cli] == []


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for t in sorted(g.get(m, ())):
            if state.get(t) == 1:
                return path + [m, t]
            if t not in state and (cycle := visit(t, path + [m])):
                return cycle
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state:
            assert (cycle := visit(m, [])) is None, " -> ".join(cycle)
