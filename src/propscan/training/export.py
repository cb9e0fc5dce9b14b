"""Export a training checkpoint to the runtime format: ONNX (optionally int8) + span head in numpy.

Needs the ``train`` extra. The written folder is what ``propscan.pipeline.model.Model`` loads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from propscan.pipeline import assemble, encoders, encoding
from propscan.pipeline.assemble import quantize as to_int8
from propscan.training.train import SOUP_KEYS, adapter_factors, load_checkpoint, with_defaults


def export_onnx(checkpoint: Path, out: Path, quantize: bool = True, padding_bias: bool = True) -> Path:
    """Write model.onnx (int8 when ``quantize``), tokenizer.json and heads.npz into ``out``.

    ``padding_bias`` False leaves the attention-mask bias out of the graph (drop_padding_bias): the model
    then runs unpadded windows only, which is all the runtime gives it (model.BATCH is 1)."""
    model, cfg = load_checkpoint(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    fp32, int8 = out / "model.fp32.onnx", out / ".model.int8.onnx.tmp"
    try:
        _export_fp32(model, fp32, padding_bias=padding_bias)
        if quantize:
            to_int8(fp32, int8)  # quantize_dynamic writes in place: renamed only once whole
            int8.replace(out / "model.onnx")
            fp32.unlink()
        else:
            fp32.rename(out / "model.onnx")
    except BaseException:  # a full disk or Ctrl-C: no half-written graph left beside the model
        fp32.unlink(missing_ok=True)
        int8.unlink(missing_ok=True)
        raise
    shutil.copy(checkpoint / "tokenizer.json", out / "tokenizer.json")
    _save_heads(model, out)
    return out


def _save_heads(model, out: Path) -> None:
    head = model.span_head
    np.savez(
        out / "heads.npz",
        w1=head[0].weight.detach().numpy(),
        b1=head[0].bias.detach().numpy(),
        w2=head[3].weight.detach().numpy(),
        b2=head[3].bias.detach().numpy(),
    )


def _export_fp32(model, path: Path, simplify: bool = True, padding_bias: bool = True) -> None:
    import torch

    class Runtime(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids, attention_mask)

    ids = torch.randint(1000, 2000, (2, 40))
    mask = torch.ones_like(ids)
    torch.onnx.export(
        Runtime(model).eval(),
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["token_logits", "hidden"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "token_logits": {0: "batch", 1: "seq"},
            "hidden": {0: "batch", 1: "seq"},
        },
        opset_version=17,
        dynamo=False,
    )
    if simplify or not padding_bias:  # one load and save for both graph edits
        import onnx

        graph = onnx.load(str(path))
        if simplify:
            simplify_graph(graph)
        if not padding_bias:
            drop_padding_bias(graph)
        onnx.save(graph, str(path))


PROBE_TEXT = "They will stop at nothing to destroy our country, and the corrupt elites know it."


def export_package(checkpoint: Path, out: Path, name: str, version: str, quantize: bool = True) -> Path:
    """Write an adapter package (see ``propscan.pipeline.assemble``) of a LoRA checkpoint into ``out``, and
    beside it ``model.onnx``: the network the package builds into (int8, or fp32 without ``quantize``),
    for tuning and dev figures.

    The graph keeps every weight training made (heads, and anything not found in the base file); each
    weight equal to a merged base tensor, or its transpose, is stripped and named in package.json.
    Checked here: the graph filled from the base file gives the checkpoint's fp32 outputs.
    """
    import hashlib

    import onnx
    import torch
    from onnx import numpy_helper
    from safetensors.numpy import load_file

    model, cfg = load_checkpoint(checkpoint, merge=False)
    if not cfg.lora_rank:
        raise ValueError(f"{checkpoint}: not trained with adapters (lora_rank 0); ship it with export_onnx")
    out.mkdir(parents=True, exist_ok=True)
    adapters = adapter_factors(model.encoder)
    np.savez(out / "adapters.npz", **adapters)
    model.encoder = model.encoder.merge_and_unload()
    base_path = encoders.base_encoder_dir(cfg.encoder) / "model.safetensors"
    base = load_file(str(base_path))
    merged = {k: v.detach().numpy() for k, v in model.encoder.state_dict().items() if k in base}

    digest = lambda a: hashlib.sha256(np.ascontiguousarray(a).tobytes() + str(a.shape).encode()).hexdigest()  # noqa: E731
    index = {}
    for key, arr in merged.items():
        if arr.dtype == np.float32:
            index[digest(arr)] = (key, False)
            if arr.ndim == 2:
                index.setdefault(digest(arr.T), (key, True))
    fp32 = out / "graph.fp32.onnx"
    _export_fp32(model, fp32)
    graph = onnx.load(str(fp32))
    weights = {}
    for init in graph.graph.initializer:
        hit = index.get(digest(numpy_helper.to_array(init))) if init.data_type == onnx.TensorProto.FLOAT else None
        if hit:
            weights[init.name] = list(hit)
            for field in ("raw_data", "float_data"):
                init.ClearField(field)
    onnx.save(graph, str(out / "graph.onnx"))
    manifest = {"name": name, "version": version, "base_encoder": cfg.encoder,
                "base_sha256": assemble.sha256(base_path), "precision": "int8" if quantize else "fp32",
                "weights": weights}
    (out / "package.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.copy(checkpoint / "tokenizer.json", out / "tokenizer.json")
    _save_heads(model, out)

    # the probe: a fixed text's logits from the assembled model, after checking its fp32 stage
    ids = _probe_ids(out)
    filled = out / "probe.fp32.onnx"
    assemble.fill_graph(out, manifest, base, filled)
    with torch.no_grad():
        want = model(torch.from_numpy(ids), torch.ones_like(torch.from_numpy(ids)))[0].numpy()
    diff = float(np.abs(assemble.probe_logits(filled, ids) - want).max())
    if diff > 1e-3:
        raise RuntimeError(f"the package rebuilt from the base weights differs from the checkpoint by {diff}")
    assemble.finish_package(out, manifest, filled, ids)
    fp32.unlink(missing_ok=True)
    return out


def _probe_ids(package: Path) -> np.ndarray:
    tok = encoding.load_tokenizer(package / "tokenizer.json")
    return np.array([tok.encode(PROBE_TEXT).ids], dtype=np.int64)


def _read_npz(folders: list[Path], name: str) -> list[dict[str, np.ndarray]]:
    out = []
    for folder in folders:
        with np.load(folder / name) as z:
            out.append({k: z[k] for k in z.files})
    return out


def average_packages(packages: list[Path], out: Path, version: str) -> Path:
    """A weight soup of adapter packages trained from one initialisation (one recipe, other data orders),
    written as one package into ``out`` with ``model.onnx`` and the probe beside it, as export_package does.

    Each adapted weight gets the mean of the runs' updates, exactly: the factors are stacked, A as
    [A1; A2; ...] and B as [B1, B2, ...] / n, so the rank adds up (16 + 16 -> 32: 2x the adapter file).
    The graph's trained weights (the token head) and the span classifier are averaged. Tune the folder
    afterwards (build.retune_model_folder); its model.json is the first package's, renamed ``version``,
    with the soup's recipe: the first run's settings and one member per run (what train_soup would do).
    """
    import onnx
    from onnx import numpy_helper

    manifests = [json.loads((p / "package.json").read_text()) for p in packages]
    for p, m in zip(packages[1:], manifests[1:]):
        for key in ("base_encoder", "base_sha256", "precision", "weights"):
            if m[key] != manifests[0][key]:
                raise ValueError(f"{p}: its {key} differs from {packages[0]}'s; only runs of one recipe can be averaged")
    metas = [json.loads((p / "model.json").read_text()) for p in packages]
    configs = [m.get("train_config", {}) for m in metas]
    filled = [with_defaults(c) for c in configs]  # a run recorded before a recipe key existed used its default
    differ = lambda c, k: c.get(k) != filled[0].get(k)  # noqa: E731
    if bad := sorted({k for c in filled for k in c if k not in SOUP_KEYS | {"members"} and differ(c, k)}):
        raise ValueError(f"{packages}: trained with other settings ({', '.join(bad)}); only runs of one recipe can be averaged")
    members = [{k: c[k] for k in sorted(SOUP_KEYS) if k in c and differ(c, k)} for c in filled]
    graphs = [onnx.load(str(p / "graph.onnx")) for p in packages]
    if len({len(g.graph.node) for g in graphs}) > 1:
        raise ValueError(f"{packages}: the graphs differ; only runs of one recipe can be averaged")
    stripped = manifests[0]["weights"]
    for inits in zip(*(g.graph.initializer for g in graphs)):
        first = inits[0]
        if first.name in stripped:
            continue
        arrays = [numpy_helper.to_array(i) for i in inits]
        if {i.name for i in inits} != {first.name} or len({a.shape for a in arrays}) > 1:
            raise ValueError(f"{packages}: the graphs' weights differ in name or shape at {first.name}")
        if first.data_type == onnx.TensorProto.FLOAT:
            first.CopyFrom(numpy_helper.from_array(np.mean(arrays, axis=0).astype(np.float32), first.name))
        elif any(not np.array_equal(arrays[0], a) for a in arrays[1:]):
            raise ValueError(f"{packages}: the graphs' constant {first.name} differs")
    adapters, heads = _read_npz(packages, "adapters.npz"), _read_npz(packages, "heads.npz")
    if any(a.keys() != adapters[0].keys() for a in adapters) or any(h.keys() != heads[0].keys() for h in heads):
        raise ValueError(f"{packages}: their adapters or heads differ in what they hold; only runs of one recipe can be averaged")

    # the base the adapters were trained over, checked by hash as a user's build checks it
    base = assemble.base_weights(manifests[0])
    # every check passed: only now is anything written
    n = len(packages)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "adapters.npz", **{  # A (r, in) stacked over rows, B (out, r) over columns
        key: np.concatenate([z[key] if key.endswith(".A") else z[key] / np.float16(n) for z in adapters],
                            axis=0 if key.endswith(".A") else 1)
        for key in adapters[0]})
    np.savez(out / "heads.npz", **{k: np.mean([h[k] for h in heads], axis=0) for k in heads[0]})
    onnx.save(graphs[0], str(out / "graph.onnx"))
    manifest = {**manifests[0], "version": version}
    (out / "package.json").write_text(json.dumps(manifest, indent=1) + "\n")
    meta = {**metas[0], "version": version, "train_config": {**configs[0], "members": members}}
    (out / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.copy(packages[0] / "tokenizer.json", out / "tokenizer.json")
    filled = out / "soup.fp32.onnx"
    assemble.fill_graph(out, manifest, base, filled)
    assemble.finish_package(out, manifest, filled, _probe_ids(out))
    return out


def write_model_json(out: Path, **fields) -> None:
    meta = {"onnx": "model.onnx", **fields}
    (out / "model.json").write_text(json.dumps(meta, indent=1) + "\n")


def drop_padding_bias(model) -> int:
    """Bypass every Add of a tensor computed from ``attention_mask`` alone to one computed from
    ``input_ids`` (the mask bias on attention scores); edits ``model`` in place and returns how many.

    For an unpadded window the bias is all zeros (BERT's (1 - mask) * min), so the outputs stay exactly
    the same (tests/training/test_build.py checks it) while the graph skips one Add over the
    heads x 256 x 256 scores in every layer: 7% of a MiniLM window's time (one-off onnxruntime
    profile, 1 thread, 2026-12-04).
    """
    graph = model.graph
    deps: dict[str, frozenset] = {i.name: frozenset([i.name]) for i in graph.input}
    for node in graph.node:  # nodes are in topological order in an exported graph
        # a shape carries no values: the bias is shaped after the text but computed from the mask alone
        shape_only = node.op_type in ("Shape", "Size")
        d = frozenset() if shape_only else frozenset().union(*(deps.get(i, frozenset()) for i in node.input if i))
        deps.update((o, d) for o in node.output)
    mask_only, text = frozenset(["attention_mask"]), "input_ids"
    rename: dict[str, str] = {}
    keep = []
    for node in graph.node:
        if node.op_type == "Add" and len(node.input) == 2:
            a, b = (deps.get(i, frozenset()) for i in node.input)
            if a == mask_only and text in b or b == mask_only and text in a:
                rename[node.output[0]] = node.input[1] if a == mask_only else node.input[0]
                continue
        keep.append(node)
    assert not {o.name for o in graph.output} & set(rename), "a graph output would be renamed"
    for node in keep:
        for k, i in enumerate(node.input):
            while i in rename:
                i = rename[i]
            node.input[k] = i
    del graph.node[:]
    graph.node.extend(keep)
    return len(rename)


def simplify_graph(model) -> dict[str, int]:
    """Remove work the exported attention does that cannot change our outputs; edits ``model`` (an
    onnx ModelProto) in place and returns how many nodes each step removed.

    - ``Where(IsNaN(softmax), 0, softmax)``: torch's SDPA guards rows whose every key is masked. A
      window always has unmasked keys (its start token at least), so no row is NaN: use the softmax.
    - Identical nodes (same operator, inputs and attributes; constants by value): the attention-mask
      bias is rebuilt in every layer from the same mask. One copy is kept.

    Measured with onnxruntime's profiler on one 256-token MiniLM window (1 thread): the Where and IsNaN
    nodes took 16% of the time. Outputs are unchanged (tests/pipeline/test_assemble.py checks it).
    """
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    rename: dict[str, str] = {}
    removed = {"nan_guards": 0, "duplicates": 0}
    keep = []
    for node in graph.node:
        if node.op_type == "Where" and len(node.input) == 3:
            cond = producer.get(node.input[0])
            if cond is not None and cond.op_type == "IsNaN" and cond.input[0] == node.input[2] \
                    and producer.get(node.input[2]) is not None and producer[node.input[2]].op_type == "Softmax":
                rename[node.output[0]] = node.input[2]
                removed["nan_guards"] += 1
                continue
        keep.append(node)
    seen: dict[tuple, list[str]] = {}
    out = []
    for node in keep:
        inputs = tuple(rename.get(i, i) for i in node.input)
        del node.input[:]
        node.input.extend(inputs)
        key = (node.domain, node.op_type, inputs, tuple(a.SerializeToString() for a in node.attribute))
        if key in seen and len(seen[key]) == len(node.output):
            rename.update(zip(node.output, seen[key]))
            removed["duplicates"] += 1
            continue
        seen[key] = list(node.output)
        out.append(node)
    graph_outputs = {o.name for o in graph.output}
    assert not graph_outputs & set(rename), "a graph output would be renamed"
    del graph.node[:]
    graph.node.extend(out)
    # IsNaN nodes now feed nothing: drop every node whose outputs nobody reads
    while True:
        used = {i for n in graph.node for i in n.input} | graph_outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        removed["nan_guards"] += len(dead)
        for n in dead:
            graph.node.remove(n)
    return removed
