"""Smooth an adapter package for int8 (SmoothQuant): measure each weight MatMul's input, channel by channel,
on training windows, and write the scales the build applies before quantising (assemble.smooth_graph).

MPNet quantised as it is lost 0.045 of dev SI; its activations carry a few outlier channels that
stretch the one int8 range each activation gets. The scale of channel j, s_j = max|X_j|^a / max|W_j|^(1-a),
moves a share ``a`` of that range into the weight rows, which int8 quantises per output channel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from propscan.pipeline import assemble, encoding

# Mean |token logit change| int8 against fp32 on 53 windows of 6 training articles, by a (one-off
# runs/sq/smooth.py, propscan-mpnet 2026-12-04): none 0.255, 0.3 0.568, 0.5 0.361, 0.7 0.052,
# 0.8 0.045, 0.85 0.049, 0.9 0.056, 1.0 0.112.
ALPHA = 0.8
# how many training articles the activations are measured on (their windows, two at a time)
CALIBRATION_ARTICLES = 12
# How a smoothed package runs (model.json "runtime"): the int8 runtime of new trained models
# (build.INT8_RUNTIME) less its graph change, since a package's graph keeps the attention-mask bias.
# Without SkipLayerNormFusion one 256-token window of the int8 MPNet took 84-86 ms against 96-98, one
# thread (docs/experiments.md, eighteenth session).
RUNTIME = {"last_window": "short", "disabled_optimizers": ["SkipLayerNormFusion"]}


def calibration_batches(tokenizer_path: Path, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The texts cut into the runtime's windows, two windows to a batch."""
    tok = encoding.load_tokenizer(tokenizer_path)
    cls_id, sep_id, pad_id = encoding.special_ids(tok)
    batches = []
    for text in texts:
        enc = encoding.encode(tok, text)
        wins = encoding.make_windows(len(enc))
        for k in range(0, len(wins), 2):
            batches.append(encoding.batch_windows(enc.ids, wins[k : k + 2], cls_id, sep_id, pad_id))
    return batches


def activation_maxima(model, names: list[str], batches: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """max |x| per channel of each named activation over the batches, from the fp32 network ``model`` (an
    onnx ModelProto; the names are added to its outputs)."""
    import onnx
    import onnxruntime as ort

    for name in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    maxima: dict[str, np.ndarray] = {}
    for ids, mask in batches:
        feeds = {k: v for k, v in {"input_ids": ids, "attention_mask": mask}.items() if k in inputs}
        for name, x in zip(names, session.run(names, feeds)):
            m = np.abs(x[mask.astype(bool)]).max(axis=0)  # real tokens only
            maxima[name] = np.maximum(maxima[name], m) if name in maxima else m
    return maxima


def smoothing_scales(fp32: Path, batches: list[tuple[np.ndarray, np.ndarray]], alpha: float = ALPHA) -> dict[str, np.ndarray]:
    """s per channel of every activation a weight MatMul reads (the encoder blocks' and the token head's:
    quantisation takes every weight MatMul)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(fp32))  # once: MPNet's fp32 graph is 440 MB
    weights = {i.name: i for i in model.graph.initializer}
    readers = assemble.weight_readers(model.graph)
    w_max = {name: np.max([np.abs(numpy_helper.to_array(weights[n.input[1]])).max(axis=1) for n in nodes], axis=0)
             for name, nodes in readers.items()}
    maxima = activation_maxima(model, list(readers), batches)
    return {name: (np.maximum(maxima[name], 1e-5) ** alpha / np.maximum(w_max[name], 1e-5) ** (1 - alpha)).astype(np.float32)
            for name in readers}


def weight_products(graph: Path, patterns: list[str]) -> list[str]:
    """The weight MatMuls of an ONNX graph (assemble.product_names) whose node names match one of the
    regular expressions ``patterns`` (re.search; e.g. r"layer\\.\\d+/output/dense", each block's
    feed-forward output product), in graph order; a pattern that matches none is an error."""
    names = assemble.product_names(graph)
    if unmatched := [p for p in patterns if not any(re.search(p, name) for name in names)]:
        raise ValueError(f"no weight product's name matches {unmatched[0]!r}")
    return [name for name in names if any(re.search(p, name) for p in patterns)]


def smooth_package(package: Path, texts: list[str], alpha: float = ALPHA, keep_fp32: list[str] = ()) -> dict:
    """Make ``package`` an int8 package with smoothing: scales measured on ``texts`` (training articles,
    never the test set), written to smoothing.npz; the weight products whose names match one of
    ``keep_fp32`` (weight_products) stay fp32 (package.json: fp32_products); the int8 runtime (RUNTIME) in model.json;
    then model.onnx and the probe rebuilt as a user's build will make them. Tune the folder again
    afterwards (its network changed). Returns the manifest."""
    manifest = json.loads((package / "package.json").read_text())
    kept = weight_products(package / "graph.onnx", list(keep_fp32)) if keep_fp32 else []
    base = assemble.base_weights(manifest)  # checked against the hash the adapters were trained over, as a build does
    fp32 = package / "smooth.fp32.onnx"
    assemble.fill_graph(package, manifest, base, fp32)
    del base
    scales = smoothing_scales(fp32, calibration_batches(package / "tokenizer.json", texts), alpha)
    np.savez(package / assemble.SMOOTHING_FILE, **scales)
    manifest = {k: v for k, v in manifest.items() if k != "fp32_products"}
    manifest = {**manifest, "precision": "int8", "smoothing": {"alpha": alpha, "articles": len(texts)},
                **({"fp32_products": kept} if kept else {})}
    (package / "package.json").write_text(json.dumps(manifest, indent=1) + "\n")
    meta = json.loads((package / "model.json").read_text())
    quantized = f"int8 (smoothed; {len(kept)} products kept in fp32)" if kept else "int8 (smoothed)"
    (package / "model.json").write_text(json.dumps({**meta, "quantized": quantized, "runtime": RUNTIME}, indent=1) + "\n")
    with np.load(package / "probe.npz") as z:  # the same probe text, the new network's logits
        ids = z["ids"]
    assemble.finish_package(package, manifest, fp32, ids)
    return manifest
