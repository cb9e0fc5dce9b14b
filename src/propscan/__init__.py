"""propscan: find propaganda and persuasion techniques in news articles, span by span."""

import os

# numpy's BLAS threads and onnxruntime's spinning intra-op threads fight over the same cores; the
# small numpy products here gain nothing from threads, and letting both spin nearly halved end-to-end
# speed (benchmarks/speed.py, 90 PTC test articles on 2 cores: 12.2 s -> 7.8 s). Must run before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
