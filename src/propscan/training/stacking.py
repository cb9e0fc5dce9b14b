"""Tuning on out-of-fold network outputs (stacking).

A model's detection is tuned on the train articles its training held out (``val_every``: one eighth,
47 articles) and PTC dev. The fold networks widen that: each is trained by the same recipe with
another eighth held out (``TrainConfig.val_fold``), so every train article has outputs from a network
that never trained on it. ``OutOfFold`` is the model tuning then reads: the shipped network for its
own held-out articles and for dev, and for each other train article the fold network that held it out
(its token outputs and its span classifier). The settings tuned on all of them ship with the shipped
network alone; the fold networks are needed again only to retune.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from propscan.errors import ModelError
from propscan.pipeline.model import Model, TokenOutputs, locate
from propscan.ptc import Label
from propscan.training.train import TrainConfig, held_out, recipe_changes, recorded_held_out, with_defaults

# what a fold network's recipe may differ in from the shipped network's: where it ran, and its fold
FOLD_FREE = {"val_fold", "device", "threads"}


class OutOfFold:
    """``main`` as tuning sees it, with the articles each fold network held out read by that network.

    ``folds`` pairs each fold network with the articles it held out (id -> text). Articles are told apart
    by their text, as the tuning's output cache keys them. Everything else (decoding settings, cutoffs,
    calibration, configure) is ``main``'s: the span head's repetition bonus is the one being tuned."""

    def __init__(self, main: Model, folds: list[tuple[Model, dict[str, str]]]):
        self.main = main
        self._network: dict[str, Model] = {}
        for net, held in folds:
            for text in held.values():
                self._network[text] = net

    def network(self, text: str) -> Model:
        """The network that reads ``text``: the fold network that held it out, else ``main``."""
        return self._network.get(text, self.main)

    def token_outputs(self, text: str) -> TokenOutputs:
        return self.network(text).token_outputs(text)

    def classify_spans(self, text: str, out: TokenOutputs, token_ranges: list[tuple[int, int]],
                       repeat_bonus: float | None = None):
        bonus = self.main.decoding.get("repeat_bonus", 0.0) if repeat_bonus is None else repeat_bonus
        return self.network(text).classify_spans(text, out, token_ranges, bonus)

    @property
    def decoding(self) -> dict[str, Any]:
        return self.main.decoding

    @decoding.setter
    def decoding(self, value: dict[str, Any]) -> None:
        self.main.decoding = value

    def __getattr__(self, name: str) -> Any:  # settings, config, configure, name, ... are main's
        return getattr(self.main, name)


def fold_networks(folders: list[Path], articles: dict[str, str], labels: list[Label], main_config: dict
                  ) -> list[tuple[Model, dict[str, str]]]:
    """Each fold network with the train articles it held out. Refused (ModelError): a network of another
    recipe, or one holding out a fold the model or another network already holds out."""
    main_cfg = TrainConfig(**with_defaults(main_config["train_config"]))
    taken, nets = {main_cfg.val_fold}, []
    for folder in folders:
        net = Model(locate(folder))
        if "train_config" not in net.config:
            raise ModelError(f"{folder}: its model.json records no train_config, so which articles it held out is unknown")
        cfg = with_defaults(net.config["train_config"])
        if differs := recipe_changes(cfg, main_cfg, FOLD_FREE):
            raise ModelError(f"{folder}: not a fold network of this model's recipe (it differs in {', '.join(differs)})")
        if cfg["val_fold"] in taken:
            raise ModelError(f"{folder}: holds out fold {cfg['val_fold']}, which the model or another fold network holds out too")
        taken.add(cfg["val_fold"])
        nets.append((net, held_out(articles, labels, cfg["val_every"], cfg["val_fold"])[0]))
    return nets


def tuning_set(main: Model, folds: list[tuple[Model, dict[str, str]]], articles: dict[str, str], labels: list[Label]
               ) -> tuple[OutOfFold, tuple[dict[str, str], list[Label]]]:
    """The model tuning reads, and the train articles (with labels) it reads out of fold: the shipped
    network's held-out articles and every fold network's."""
    own = recorded_held_out(articles, labels, main.config["train_config"])[0]
    held = {**own, **{a: t for _, h in folds for a, t in h.items()}}
    return OutOfFold(main, folds), (held, [lab for lab in labels if lab.article_id in held])
