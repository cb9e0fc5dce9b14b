"""propscan: find propaganda and persuasion techniques in news articles, span by span.

The public API::

    import propscan
    model = propscan.load_model()            # "fast" (default), "accurate", or a model folder
    result = propscan.analyze("Only a fool trusts these crooks.", model=model)
    for span in result.spans:
        print(span.technique, span.score, result.document.text[span.start:span.end])

``result`` is an ``Analysis`` (``propscan.document``): character offsets into the text as given.
"""

import importlib
import os

# numpy's BLAS threads and onnxruntime's spinning intra-op threads fight over the same cores; the
# small numpy products here gain nothing from threads, and letting both spin nearly halved end-to-end
# speed (benchmarks/speed.py, 90 PTC test articles on 2 cores: 12.2 s -> 7.8 s). Must run before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

# name -> "module:attribute", loaded on first use, so that `import propscan.techniques` stays light
_PUBLIC = {
    "analyze": "propscan.pipeline.analyze:analyze",
    "load_model": "propscan.pipeline.model:load",
    "Analysis": "propscan.document:Analysis",
    "Document": "propscan.document:Document",
    "Span": "propscan.document:Span",
    "PropscanError": "propscan.errors:PropscanError",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'propscan' has no attribute {name!r}")
    module, attr = _PUBLIC[name].split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
