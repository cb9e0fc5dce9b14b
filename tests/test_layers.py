"""The import graph, read from the code: imports go one way, from the command line and the server down
to the core; nothing imports the command line; no cycles. A new module must be given a layer here."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "propscan"

# lower layers never import higher ones (a module may import its own layer or any lower one); a
# package's modules share its layer
LAYERS = {
    0: {"techniques", "errors", "document", "ptc", "atomic"},  # the data model and its file formats
    1: {"pipeline"},  # from a file, a link or a text to an Analysis
    2: {"outputs", "evaluation"},  # writers, the report; scoring against gold
    3: {"corpus", "serve", "training"},  # applications; training is the [train] extra
    4: {"cli", "__main__"},  # the command line
}
TOP = {m: k for k, mods in LAYERS.items() for m in mods}


def layer(module: str) -> int:
    return TOP[module.split(".")[0]]


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
    return rel.removesuffix(".__init__") if rel != "__init__" else ""


def _imports(path: Path) -> set[str]:
    """propscan modules imported anywhere in the file (top level or inside functions)."""
    mod = _module(path)
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    known = {_module(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            if node.module:
                found.add(".".join(base + node.module.split(".")))
            else:
                found.update(".".join(base + [a.name]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "propscan":
            base = node.module.removeprefix("propscan").removeprefix(".")
            # "from propscan.pipeline import model" names the module; "from propscan.corpus import run" the package
            found.update(f"{base}.{a.name}".lstrip(".") if f"{base}.{a.name}".lstrip(".") in known else base
                         for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("propscan.") for a in node.names if a.name.startswith("propscan."))
    # "from .. import formats" names a module; "from ..corpus import run" names one too
    return {m for m in found if m in known and m not in ("", mod)}


def graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PACKAGE.rglob("*.py") if _module(p)}


def test_every_module_has_a_layer():
    assert sorted(m for m in graph() if m.split(".")[0] not in TOP) == []


def test_imports_go_down_the_layers():
    wrong = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
             for m, targets in graph().items() for t in targets if layer(t) > layer(m)]
    assert wrong == []


def test_nothing_outside_the_command_line_imports_it():
    def is_cli(m: str) -> bool:
        return layer(m) == 4

    assert [m for m, targets in graph().items() if not is_cli(m) and any(map(is_cli, targets))] == []


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


# Imports inside functions hide the import graph. Allowed only where a command would otherwise pay for
# what it does not use: `propscan serve` (FastAPI and uvicorn, about 0.5 s at every start-up of the
# command line) and training (the [train] extra, which a runtime install lacks).
DEFERRED = {"cli.main": ("serve.", "training.")}


def test_imports_inside_functions_only_defer_the_server_and_training():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        mod = _module(path)
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                    for name in names:
                        if name.split(".")[0] == "propscan" or (isinstance(node, ast.ImportFrom) and node.level):
                            target = name.removeprefix("propscan").lstrip(".")
                            if not target.startswith(DEFERRED.get(mod, ())):
                                wrong.append(f"{mod}.{fn.name} imports {name or '.'}")
    assert wrong == []
