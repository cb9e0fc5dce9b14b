"""Errors a user can act on: each names the input and the problem in one line."""

from __future__ import annotations

from pathlib import Path


class PropscanError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class InputError(PropscanError):
    def __init__(self, source: str | Path, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class ModelError(PropscanError):
    pass


class OutputError(PropscanError):
    """The output cannot be written: a folder, a read-only place, a full disk."""

    def __init__(self, target: str | Path, problem: str):
        super().__init__(f"cannot write {target}: {problem}")
