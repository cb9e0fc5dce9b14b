"""The small public API: ``propscan.analyze``, ``propscan.load_model`` and the data model, with the real model."""

from __future__ import annotations

import subprocess
import sys

import pytest

import propscan


def test_analyze_a_string_with_the_shipped_model():
    text = "The corrupt elite lie to you every day. Only a fool trusts these crooks."
    model = propscan.load_model()
    result = propscan.analyze(text, model=model)
    assert isinstance(result, propscan.Analysis)
    assert result.document.id == "text" and result.document.text == text
    assert result.spans and all(isinstance(s, propscan.Span) for s in result.spans)
    assert all(0 <= s.start < s.end <= len(text) and text[s.start:s.end].strip() for s in result.spans)
    same = propscan.analyze(propscan.Document("mine", text), model=model)
    assert [(s.start, s.end, s.technique) for s in same.spans] == [(s.start, s.end, s.technique) for s in result.spans]
    assert result.model.name == propscan.load_model("fast").name


def test_a_bad_model_name_is_a_propscan_error():
    with pytest.raises(propscan.PropscanError):
        propscan.load_model("no-such-model-anywhere")


def test_unknown_names_and_listing():
    with pytest.raises(AttributeError):
        propscan.no_such_thing  # noqa: B018
    assert {"analyze", "load_model", "Analysis", "Document", "Span", "PropscanError"} <= set(dir(propscan))


def test_importing_a_core_module_does_not_load_the_model_runtime():
    code = "import sys, propscan.techniques; print('onnxruntime' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
