"""A training run stopped after an epoch and started again with the same recipe goes on where it
stopped, to the same weights as a run that never stopped (the real MiniLM, adapters on its top blocks,
dropout on: the random generators and the data order are part of what is saved)."""

from __future__ import annotations

import json

import pytest

from conftest import require_train_extra, run_cli
from propscan.ptc import Label
from propscan.training.train import RESUME_FILE, TrainConfig

TEXTS = {
    "1": "Crooked Hillary lies again. They will destroy our great country unless we act now.",
    "2": "The corrupt elites never stop. Make America great again! Everyone knows the truth.",
    "3": "The committee met on Tuesday and adjourned. Nothing else was decided at the meeting.",
    "4": "Only a fool would believe the fake news media. Wake up, patriots, before it is too late!",
}
LABELS = [
    Label("1", 0, 15, "Name_Calling,Labeling"),
    Label("1", 28, 56, "Appeal_to_fear-prejudice"),
    Label("2", 4, 18, "Loaded_Language"),
    Label("2", 31, 54, "Slogans"),
    Label("4", 26, 46, "Name_Calling,Labeling"),
]


def _cfg(**over) -> TrainConfig:
    base = dict(epochs=3, batch_size=2, val_every=4, threads=1, device="cpu", lora_rank=4, lora_layers=2, prior_init=True)
    return TrainConfig(**{**base, **over})


def _train(out, cfg):
    from propscan.training.train import train

    said = []
    train(TEXTS, LABELS, out, cfg, log=said.append)
    return said


def _weights(out):
    import torch

    return torch.load(out / "weights.pt")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    require_train_extra()
    out = tmp_path_factory.mktemp("straight")
    _train(out, _cfg())
    return out


def test_a_resumed_run_ends_where_a_straight_one_does(straight, tmp_path):
    import torch

    assert _train(tmp_path, _cfg(stop_after=1))[-1].startswith("epoch 1 done")
    after_one = _weights(tmp_path)
    assert json.loads((tmp_path / "train_config.json").read_text())["stop_after"] == 1
    said = _train(tmp_path, _cfg())  # the same recipe again, run to its end
    assert f"resuming {tmp_path} after epoch 1 of 3" in said
    assert not any(line.startswith("epoch 1 done") for line in said)
    resumed, whole = _weights(tmp_path), _weights(straight)
    assert not torch.equal(after_one["token_head.weight"], resumed["token_head.weight"])  # it did train on
    assert resumed.keys() == whole.keys()
    for key in whole:
        torch.testing.assert_close(resumed[key], whole[key], rtol=0, atol=1e-6, msg=key)


class Killed(Exception):
    pass


def test_a_run_stopped_inside_an_epoch_goes_on_from_that_step(straight, tmp_path, monkeypatch):
    import torch

    from propscan.training import train as train_mod

    real_save = train_mod.save_resume_state

    def save_then_die(*args, **kw):  # the process killed right after its first state inside an epoch
        real_save(*args, **kw)
        if kw.get("batches_done"):
            raise Killed

    monkeypatch.setattr(train_mod, "RESUME_EVERY_S", 0.0)
    monkeypatch.setattr(train_mod, "save_resume_state", save_then_die)
    with pytest.raises(Killed):
        _train(tmp_path, _cfg())
    state = torch.load(tmp_path / RESUME_FILE, weights_only=False)
    assert state["epoch"] == 0 and state["batches_done"] == 1 and state["step"] == 1
    monkeypatch.setattr(train_mod, "save_resume_state", real_save)
    said = _train(tmp_path, _cfg())
    assert f"resuming {tmp_path} in epoch 1 of 3, after step 1" in said
    resumed, whole = _weights(tmp_path), _weights(straight)
    for key in whole:
        torch.testing.assert_close(resumed[key], whole[key], rtol=0, atol=1e-6, msg=key)


def test_a_finished_run_is_not_trained_again(straight):
    import torch

    state = torch.load(straight / RESUME_FILE, weights_only=False)
    assert state["finished"] is True and state["epoch"] == 3
    assert (straight / RESUME_FILE).stat().st_size < 10_000  # no weights or optimiser state left behind
    before = (straight / "weights.pt").stat().st_mtime_ns
    said = _train(straight, _cfg(threads=2))  # how fast it runs is no part of the recipe
    assert said[-1] == f"resuming {straight} after epoch 3 of 3"
    assert (straight / "weights.pt").stat().st_mtime_ns == before


def test_a_folder_of_another_recipe_is_refused(straight):
    with pytest.raises(ValueError, match=r"holds a run of another recipe \(differs in lr\)"):
        _train(straight, _cfg(lr=1e-3))


def test_an_unreadable_resume_file_says_so_in_one_line(tmp_path):
    require_train_extra()
    (tmp_path / RESUME_FILE).write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot resume from it") as err:
        _train(tmp_path, _cfg())
    assert "\n" not in str(err.value)


def test_a_damaged_weights_file_is_one_line_naming_it(tmp_path):
    """weights.pt is saved atomically; one damaged afterwards (cut short in a copy) is one line naming it
    and how to train it anew, not torch's traceback, wherever it is read (here: the export's load)."""
    require_train_extra()
    from propscan.errors import ModelError
    from propscan.training.train import load_checkpoint

    _train(tmp_path, _cfg(epochs=1))
    weights = tmp_path / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError) as err:
        load_checkpoint(tmp_path)
    assert str(err.value) == (f"{weights}: cannot read it (RuntimeError); delete {tmp_path} and run the same command "
                              "again to train it anew")


def test_the_cli_refuses_another_recipes_folder_before_any_work(tmp_path, ptc_sample):
    require_train_extra()
    from dataclasses import asdict

    import torch


    (tmp_path / "checkpoint").mkdir()
    torch.save({"config": asdict(TrainConfig(epochs=2))}, tmp_path / "checkpoint" / RESUME_FILE)
    res = run_cli("train", "--articles", ptc_sample.articles, "--labels", ptc_sample.gold, "--out", tmp_path)
    assert res.rc == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and "holds a run of another recipe (differs in epochs)" in res.stderr


def test_cpu_bf16_trains_in_bf16_and_still_learns(straight, tmp_path):
    """``cpu_bf16`` runs the steps (and the frozen blocks' cache) under bf16 autocast: the same recipe
    ends on other weights than the fp32 run, close to them, and finite."""
    import torch

    said = _train(tmp_path, _cfg(cpu_bf16=True))
    assert said[-1].startswith("epoch 3 done")
    fp32, bf16 = _weights(straight), _weights(tmp_path)
    diffs = [(bf16[k].float() - fp32[k].float()).abs().max().item() for k in fp32 if fp32[k].is_floating_point()]
    assert all(torch.isfinite(bf16[k]).all() for k in bf16 if bf16[k].is_floating_point())
    assert max(diffs) > 1e-4  # bf16 was used: fp32 on one thread gives the same weights to 1e-6
    assert max(diffs) < 0.5  # and it trained the same network, not a diverged one


def test_a_span_distilled_run_trains_its_span_classifier_on_the_teachers_reading(tmp_path, monkeypatch):
    """teacher_span_weight moves the span classifier (and only through its targets: the same run with
    weight 0 trains it otherwise), in bf16 as a CPU recipe may ask."""
    import torch

    from propscan.pipeline.model import MODEL_DIR

    require_train_extra()
    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    heads = {}
    for w in (0.0, 1.0):
        out = tmp_path / f"w{w}"
        _train(out, _cfg(epochs=1, teacher=str(MODEL_DIR), teacher_span_weight=w, cpu_bf16=True))
        heads[w] = {k: v for k, v in _weights(out).items() if "span_head" in k}
    assert heads[0.0] and heads[0.0].keys() == heads[1.0].keys()
    assert any(not torch.equal(heads[0.0][k], heads[1.0][k]) for k in heads[0.0])
    assert len(list((tmp_path / "cache" / "teacher-targets" / "spans").glob("*.npz"))) == 2  # texts 2 and 4 (1 is held out, 3 has no span)
