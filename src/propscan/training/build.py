"""Build a shippable model folder end to end: train -> export ONNX -> tune on held-out -> dev figures -> card.

``propscan train`` calls this; running it with the shipped model's settings reproduces that model.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from propscan.errors import ModelError
from propscan.evaluation.evaluate import FIVE, Report, evaluate, mean_five
from propscan.pipeline.assemble import is_package, source_files
from propscan.pipeline.model import NAMES, Model, check, locate, runtime_settings
from propscan.ptc import Label
from propscan.techniques import BY_ID, TECHNIQUE_IDS, reliability
from propscan.training.export import export_onnx, export_package, write_model_json
from propscan.training.stacking import fold_networks, tuning_set
from propscan.training.train import TrainConfig, encoder_info, held_out, recipe_changes, recorded_held_out, train_soup, with_defaults
from propscan.training.tune import DETECTOR_SETS, OUT_OF_FOLD, OUT_OF_FOLD_CUTOFFS, NO_GROW, PARTITIONS, POOLED, Rule, cross_fitted_partitions, token_outputs, tune

FP32 = "fp32"  # model.json's "quantized" for an export kept in fp32 (--no-quantize)
# How a new int8 model runs (model.json "runtime", see pipeline/model.py). Fast model's windows, one-off
# timings on 2026-12-04 (1 thread, one 256-token window, training stopped): shipped graph 19.2-20.8 ms,
# without the mask bias 18.5-19.0, and without onnxruntime's SkipLayerNormFusion too 16.0-16.3
# (its fused kernel is slower here than Add + LayerNormalization); end to end on the 90 PTC test
# articles, with the short last window as well, 8.1-8.4 s -> 6.5-6.7 s. The last two change the int8
# network's outputs (up to 0.38 in a logit), so they apply only to models tuned under them. The stride
# stays the default 192: the shipped fast network retuned with windows 224 or 254 (no overlap) apart ran
# 19.7 / 20.6 articles/s against 17.1 / 16.6 but lost dev TC (0.611 / 0.598 against 0.622, mean of 5
# partitions; docs/experiments.md, seventeenth session).
INT8_RUNTIME = {"last_window": "short", "disabled_optimizers": ["SkipLayerNormFusion"], "padding_bias": False}


def finish_model_folder(
    checkpoint: Path,
    out: Path,
    articles: dict[str, str],
    labels: list[Label],
    cfg: TrainConfig,
    dev: tuple[dict[str, str], list[Label]] | None = None,
    quantize: bool = True,
    version: str | None = None,
    log=print,
    sources: list[str] | None = None,
    dev_from: Path | None = None,
    rule: Rule = Rule(),
) -> dict:
    """Export a checkpoint, tune detection on the held-out articles by ``rule``, score dev, write model.json + card.

    ``sources`` names the labelled article sets trained on (default PTC train). A model trained on dev too
    (deliverable of docs/training.md "Final models") has no dev figures of its own: ``dev_from``, the model
    folder of the train-only run with the same recipe, lends its figures, and the card says so."""
    version = version or dt.date.today().isoformat()
    val_articles, val_labels = held_out(articles, labels, cfg.val_every, cfg.val_fold)
    name = encoder_info(cfg.encoder)[0]
    lender = dev_figures_lender(Path(dev_from), cfg, rule, quantize) if dev_from is not None else None
    runtime = runtime_for(cfg, quantize, lender)
    padding_bias = runtime_settings(_runtime(runtime), out)["padding_bias"]
    if cfg.lora_rank:  # ships as adapters over the base weights; the network they build is tuned here
        export_package(checkpoint, out, name, version, quantize=quantize)
    else:
        export_onnx(checkpoint, out, quantize=quantize, padding_bias=padding_bias)
    # a provisional model.json so Model loads; tune() searches thresholds itself and the final one follows
    write_model_json(out, name=name, version=version, thresholds={"any": 0.5}, decoding={}, **_runtime(runtime))
    model = Model(out)
    meta = {
        "name": name,
        "version": version,
        "date": dt.date.today().isoformat(),
        "base_encoder": cfg.encoder,
        "quantized": "int8 dynamic, per-channel" if quantize else FP32,
        **_runtime(runtime),
        "train_config": asdict(cfg),
        "trained_on": _training_data(cfg, len(articles) - len(val_articles), sources),
    }
    if sources and len(sources) > 1:
        meta["train_sets"] = sources
    if teachers := _teachers(cfg):
        meta["teachers"] = teachers
    tuned = tune_and_score(model, val_articles, val_labels, dev, meta, log, rule)
    if lender is not None:
        borrow_dev_figures(meta, lender)
    if dev is not None and quantize:  # int8 ships only if dev F1 holds: record the fp32 figures beside it
        meta["dev_fp32"] = _fp32_dev_figures(checkpoint, out, dev, tuned, padding_bias)
        log(f"PTC dev, same model in fp32: {meta['dev_fp32']}")
    write_model_json(out, **meta)
    write_model_card(out, meta)
    return meta


def tune_and_score(model, val_articles, val_labels, dev, meta: dict, log=print, rule: Rule = Rule()) -> dict:
    """Tune detection and put the settings and figures into ``meta``.

    With ``dev``, the settings shipped are tuned on the held-out articles and dev together, and the dev
    figures recorded are cross-fitted (tune.cross_fitted: each fifth of dev scored with settings tuned
    without it); without, on the held-out articles alone.
    """
    outputs: dict = {}  # the network runs once per article for every tuning below
    by_tech: dict[str, dict] = {t: {} for t in TECHNIQUE_IDS}
    articles, gold = val_articles, val_labels
    if dev is not None:
        log(f"dev figures, cross-fitted: {len(dev[0])} dev articles in 5 folds, each tuned without its own")
        reports = cross_fitted_partitions(model, (val_articles, val_labels), dev, log, cache=outputs, rule=rule)
        report = reports[0]
        meta["dev"] = _dev_figures(report)
        meta["dev"]["cross_fitted"] = True
        meta["dev"]["partition_mean"] = _partition_mean(reports)
        log(f"PTC dev, cross-fitted, mean of {PARTITIONS} partitions into fifths: "
            + "  ".join(f"{k} {v:.4f}" for k, v in meta["dev"]["partition_mean"].items() if k != "partitions"))
        for t, prf in report.flc_by_technique.items():
            by_tech[t]["dev"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in prf.as_dict().items()}
        log(f"PTC dev, cross-fitted: SI F1 {report.si.f1:.4f}  FLC F1 {report.flc.f1:.4f}  TC F1 {report.tc.f1:.4f}  "
            f"mean technique FLC F1 {report.mean_technique_f1:.4f}  ECE {report.ece:.4f}")
        articles, gold = {**val_articles, **dev[0]}, val_labels + dev[1]
    log(f"tuning detection on {len(articles)} articles ({len(val_articles)} held-out train"
        + (f", {len(dev[0])} dev)" if dev is not None else ")"))
    tuned = tune(model, articles, gold, log=log, cache=outputs, rule=rule)
    tuned["tuned_on"] = {"heldout_articles": len(val_articles), "dev_articles": len(dev[0]) if dev is not None else 0}
    model.configure(tuned)
    meta.update({k: v for k, v in tuned.items() if k != "tuning_by_technique"})
    meta["labels"] = list(TECHNIQUE_IDS)  # the order of the model's output channels
    for t in TECHNIQUE_IDS:
        by_tech[t]["tuning"] = tuned["tuning_by_technique"][t]
    if dev is not None:  # the shipped settings on dev: in sample, kept apart from the fair figures
        meta["dev"]["in_sample"] = _dev_figures(evaluate(model, dev[0], dev[1], outputs=token_outputs(model, dev[0], outputs)))
    meta["by_technique"] = by_tech
    for stale in ("dev_by_technique", "heldout_flc_f1", "heldout_tc_f1"):  # names of earlier versions
        meta.pop(stale, None)
    return tuned


def _partition_line(d: dict) -> str:
    """What the card says of dealing dev into fifths another way (the figures above are one way's)."""
    if "partition_mean" not in d:
        return ("These figures deal dev into fifths one way; dealt otherwise, the calibration error moves most "
                "(`python benchmarks/quality.py` prints five ways and their mean).")
    m = d["partition_mean"]
    return (f"These figures deal dev into fifths one way; the mean over {m['partitions']} ways (the first this one) is "
            f"SI {m['SI']:.4f}, FLC {m['FLC']:.4f}, TC {m['TC']:.4f}, mean per-technique FLC F1 {m['mean']:.4f}, "
            f"calibration error {m['ECE']:.4f}.")


def _partition_mean(reports: list[Report]) -> dict:
    """The five figures (evaluate.FIVE) averaged over cross-fittings with different partitions of dev."""
    return {"partitions": len(reports), **{n: round(v, 4) for n, v in zip(FIVE, mean_five(reports))}}


def _dev_figures(report: Report) -> dict:
    d = {k: v for k, v in report.as_dict().items() if k in ("si", "flc", "tc")}
    d["flc_mean_technique_f1"] = round(report.mean_technique_f1, 4)
    d["ece"] = round(report.ece, 4)
    d["ece_floor"] = round(report.ece_floor()[0], 4)  # what chance alone gives a calibrated model on these spans
    return d


def retune_model_folder(folder: Path, articles: dict[str, str], labels: list[Label],
                        dev: tuple[dict[str, str], list[Label]] | None = None, version: str | None = None,
                        log=print, rule: Rule = Rule(), folds: list[Path] = ()) -> dict:
    """Tune an existing model folder's detection again (same weights), rewriting model.json and its card.

    The version changes (its outputs do); the fp32 dev figures are dropped: they were measured with the
    earlier decoding. ``rule`` is the tuning rule (tune.Rule: today's by default). ``folds``: fold
    networks of the model's recipe (stacking.py); detection is then tuned on every train article one of
    them, or the model itself, held out, each read by that network.
    """
    meta = json.loads((folder / "model.json").read_text())
    meta["version"] = version or dt.date.today().isoformat()
    val_articles, val_labels = recorded_held_out(articles, labels, meta["train_config"])
    for stale in ("dev_fp32", "dev", "calibration_fit", "by_technique"):  # all measured again below
        meta.pop(stale, None)
    nets = fold_networks(list(folds), articles, labels, meta)  # refused before anything is written
    # an adapter package is tuned on the network it builds into now (the weights do not change); its
    # package.json takes the new version only with the new model.json, so an interrupted tuning leaves
    # the package as it was
    package = is_package(folder)
    model = Model(locate(folder) if package else folder)
    if nets:
        model, (val_articles, val_labels) = tuning_set(model, nets, articles, labels)
    tune_and_score(model, val_articles, val_labels, dev, meta, log, rule)
    if nets:
        meta["tuned_on"]["fold_networks"] = len(nets)
    write_model_json(folder, **meta)
    if package:
        manifest = json.loads((folder / "package.json").read_text())
        (folder / "package.json").write_text(json.dumps({**manifest, "version": meta["version"]}, indent=1) + "\n")
    write_model_card(folder, meta)
    return meta


def _grown(ratio: float) -> str:
    """How the card says a rule grows runs (tune.Rule.grow or grow_any, ``ratio``); nothing when it does not."""
    return "" if ratio == NO_GROW else f", grown over neighbouring tokens reaching {ratio:g} times the run's threshold"


PTC_TRAIN = "PTC v2 train"  # what the card calls the training set when one --articles folder is given
# How the card says the calibration's spans were found, by the recorded rule's calibration (tune.Rule).
CALIBRATION_ROWS = {
    OUT_OF_FOLD: ", each fifth of them detected with settings chosen on the other four fifths, as an unseen article is.",
    OUT_OF_FOLD_CUTOFFS: ", each fifth of them detected with the chosen detectors at cutoffs chosen on the other four "
                         "fifths, as an unseen article is.",
}


def _teacher_folders(cfg: TrainConfig) -> list[str]:
    return sorted({t for t in [cfg.teacher, *(over.get("teacher") for over in cfg.members)] if t})


def _teachers(cfg: TrainConfig) -> list[dict]:
    """Which model each teacher folder held, so the card can say how to get it back: an earlier version
    of the model being built is in git history; any other teacher (say MPNet, never shipped) is trained
    again from its settings, which are kept for that; a shipped model named by its --model name
    (``accurate``) is that name at that version."""
    out = []
    for folder in _teacher_folders(cfg):
        config = check(folder)
        entry = {"folder": folder, "name": config["name"], "version": config["version"]}
        if folder in NAMES:
            entry["shipped"] = True
        elif config["name"] != encoder_info(cfg.encoder)[0] and "train_config" in config:
            entry["train_config"] = config["train_config"]
            if config.get("quantized") == FP32:  # the students learnt from its fp32 export: rebuild that
                entry["no_quantize"] = True
        out.append(entry)
    return out


def runtime_for(cfg: TrainConfig, quantize: bool, lender: dict | None = None) -> dict:
    """How a model built from ``cfg`` runs (model.json "runtime"). A final model runs as ``lender``, the
    train-only run whose dev figures it reports, ran (int8 figures move by about a point with the
    arithmetic: docs/experiments.md, 2026-12-04). Otherwise new int8 models get INT8_RUNTIME; the accurate
    model's package is assembled on the user's machine and keeps the plain runtime."""
    if lender is not None:
        return lender.get("runtime", {})
    return INT8_RUNTIME if quantize and not cfg.lora_rank else {}


def borrow_dev_figures(meta: dict, lender: dict) -> None:
    """Put the dev figures of ``lender`` (a train-only run's model.json, checked by ``dev_figures_lender``)
    into ``meta``: a model trained on dev has no fair dev figures of its own, and the reliability words
    need some."""
    meta["dev"] = {**lender["dev"], "from_run": f"{lender['name']} {lender['version']}"}
    for t, row in meta.get("by_technique", {}).items():
        if "dev" in lender.get("by_technique", {}).get(t, {}):
            row["dev"] = lender["by_technique"][t]["dev"]


def dev_figures_lender(folder: Path, cfg: TrainConfig, rule: Rule, quantize: bool) -> dict:
    """The model.json of ``folder`` if it can lend its dev figures to a model trained with ``cfg`` on dev
    too, tuned by ``rule`` and exported in int8 or not by ``quantize``: a train-only run with dev figures,
    the same recipe, the same tuning rule and the same kind of export. (The new model also runs its
    network as the lender does: ``runtime_for``.) Raises ValueError saying why not."""
    try:
        other = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{folder}: no readable model.json to take dev figures from ({e})") from None
    if "dev" not in other or other.get("train_sets"):
        raise ValueError(f"{folder}: not a train-only run with dev figures (train it with --dev-articles first)")
    changed = recipe_changes(other.get("train_config", {}), cfg)
    if changed:
        raise ValueError(f"{folder} was trained with another recipe (differs in {', '.join(changed)}); "
                         "its dev figures would not describe this model")
    theirs, mine = Rule.recorded(other).to_json(), rule.to_json()
    if theirs != mine:
        differs = ", ".join(k for k in mine if theirs[k] != mine[k])
        raise ValueError(f"{folder} was tuned by another rule (differs in {differs}); "
                         "its dev figures would not describe this model")
    if (other.get("quantized") == FP32) == quantize:
        this, that = ("int8", "fp32") if quantize else ("fp32", "int8")
        raise ValueError(f"{folder} was exported in {that}, this model in {this} (--no-quantize); "
                         "its dev figures would not describe this model")
    try:  # its runtime becomes this model's: one this propscan cannot run fails here, before any training
        runtime_settings(other, folder)
    except ModelError as e:
        raise ValueError(str(e)) from None
    return other


def _training_data(cfg: TrainConfig, n_train: int, sources: list[str] | None = None) -> str:
    text = f"{' + '.join(sources or [PTC_TRAIN])} minus held-out ({n_train} articles)"
    short = lambda paths: ", ".join(sorted({"/".join(Path(x).parts[-3:]) for x in paths}))  # noqa: E731
    if cfg.files("extra"):
        text += f", plus span-labelled extra texts ({short(cfg.files('extra'))})"
    if cfg.files("weak"):
        text += f", plus texts labelled without spans ({short(cfg.files('weak'))})"
    if cfg.files("transfer"):
        limit = f"the first {cfg.transfer_limit:,} " if cfg.transfer_limit else ""
        text += f", plus {limit}unlabelled sentences ({short(cfg.files('transfer'))}) learnt from the teacher alone"
    if teachers := _teacher_folders(cfg):
        # which members taught the span classifier too (teacher_span_weight may differ per member)
        span_weights = sorted({over.get("teacher_span_weight", cfg.teacher_span_weight) for over in cfg.members or [{}]
                               if over.get("teacher", cfg.teacher)} - {0.0})
        targets = "token targets"
        if span_weights:
            targets += f" and span-classifier targets (weight {', '.join(f'{w:g}' for w in span_weights)})"
        text += f"; {targets} mixed with a teacher's probabilities ({', '.join(Path(t).name for t in teachers)})"
    if cfg.members:
        text += f"; a weight average of {len(cfg.members)} runs (settings below)"
    return text


def _runtime_words(runtime: dict) -> str:
    """The card's words for how the network runs, as it was tuned (``runtime``: model.runtime_settings)."""
    words = []
    if runtime["last_window"] == "short":
        words.append("a text's last window only as long as what is left of it")
    if not runtime["padding_bias"]:
        words.append("no attention-mask bias in the graph (windows are never padded)")
    if skipped := runtime["disabled_optimizers"]:
        words.append(f"onnxruntime's {', '.join(skipped)} left out")
    return "; run as it was tuned: " + ", ".join(words) if words else ""


def _blocks(meta: dict) -> str:
    """The card's words for a network cut to its encoder's first blocks (train_config's encoder_blocks)."""
    n = meta.get("train_config", {}).get("encoder_blocks", 0)
    return f", its first {n} blocks only" if n else ""


def write_model_card(out: Path, meta: dict) -> str:
    """MODEL_CARD.md from model.json: data, date, settings, dev figures, how to reproduce."""
    rule, runtime = Rule.recorded(meta), runtime_settings(meta, out)
    lines = [
        f"# {meta['name']} {meta['version']}",
        "",
        "- **Task**: SemEval-2020 Task 11 (PTC v2): propaganda technique spans (SI) and their technique (TC/FLC), 14 techniques.",
        f"- **Base encoder**: {meta['base_encoder']} ({encoder_info(meta['base_encoder'])[1]}){_blocks(meta)}.",
        f"- **Training data**: {meta['trained_on']}; detection tuned on {_tuning_data(meta)}.",
        "- **Architecture**: encoder + per-token sigmoid over 14 techniques and an 'any technique' channel; "
        "a span classifier (MLP over mean/max-pooled token states, mean token logits, repetition count, length).",
        "- **Detection**: one detector per technique, chosen with its cutoff on the tuning articles for that "
        f"technique's own FLC F1 among {len(DETECTOR_SETS[rule.detectors])} detectors (token runs of its channel{_grown(rule.grow)}, 'any technique' runs the span classifier names{_grown(rule.grow_any)}, or, for Repetition, phrases repeated from earlier in the article{', judged over all their mentions' if rule.repeaters == POOLED else ''}); spans trimmed to whole content words; Doubt "
        f"{'kept' if meta['decoding'].get('heading_doubt') else 'not reported'} inside headings. Windows of 256 word "
        f"pieces, stride {runtime['stride']}. The span classifier adds {meta['decoding'].get('repeat_bonus', 0):g} to Repetition's "
        "log-odds for a span whose words already occurred earlier in the article (tuned on TC).",
        "- **Confidence**: a span's score is the probability that annotators marked an overlapping span of the same "
        "technique, by a per-technique Platt map (shrunk towards one pooled map) fitted on the tuning articles"
        + CALIBRATION_ROWS.get(rule.calibration, "."),
        f"- **Runtime**: ONNX, {meta['quantized']}; onnxruntime + tokenizers + numpy, no torch{_runtime_words(runtime)}.",
        f"- **Date**: {meta.get('date', meta['version'])}",
        "",
    ]
    if "dev" in meta:
        d = meta["dev"]
        lines += [
            "## PTC dev (75 articles, official SemEval-2020 formulas)",
            "",
            *_lent_figures(meta),
            *(["Dev took part in the tuning, so these figures are cross-fitted: each fifth of dev was scored with "
               "settings tuned on the held-out articles and the other four fifths, as an unseen article would be.", ""]
              if d.get("cross_fitted") else []),
            "| task | precision | recall | F1 |",
            "|---|---:|---:|---:|",
        ]
        for key, name in (("si", "SI"), ("flc", "FLC"), ("tc", "TC (micro)")):
            if key in d:
                lines.append(f"| {name} | {d[key]['precision']:.4f} | {d[key]['recall']:.4f} | {d[key]['f1']:.4f} |")
        if "ece" in d:
            lines += ["", f"Mean of the 14 per-technique FLC F1 scores: {d['flc_mean_technique_f1']:.4f}. "
                      f"Expected calibration error of the span confidences (10 bins): {d['ece']:.4f}"
                      + (f" (a perfectly calibrated model with these confidences would show {d['ece_floor']:.4f} by chance "
                         "on this many spans)." if "ece_floor" in d else "."), "", _partition_line(d)]
        if "dev_fp32" in meta:  # compared with the int8 network under the same (shipped) settings
            f, q = meta["dev_fp32"], d.get("in_sample", d)
            lines += ["", f"The same network in fp32 (not shipped), with the shipped settings: SI F1 {f['si_f1']:.4f}, "
                      f"FLC F1 {f['flc_f1']:.4f}, TC F1 {f['tc_f1']:.4f} (int8 minus fp32: SI {q['si']['f1'] - f['si_f1']:+.4f}, "
                      f"FLC {q['flc']['f1'] - f['flc_f1']:+.4f}, TC {q['tc']['f1'] - f['tc_f1']:+.4f}"
                      + (", both in sample)." if "in_sample" in d else ").")]
        lines += ["", *technique_table(meta)]
        lines.append("")
    cfg = meta.get("train_config", {})
    default_encoder = TrainConfig().encoder
    teachers = _teacher_restore(meta.get("teachers", []))
    defaults = asdict(TrainConfig())
    # a recipe file unless the settings are the defaults but for what --epochs and --encoder say
    plain = {k for k, v in cfg.items() if v != defaults.get(k)} <= {"epochs", "encoder"}
    options = ([f"--epochs {cfg.get('epochs', 6)}"]
               + ([f"--encoder {cfg['encoder']}"] if cfg.get("encoder", default_encoder) != default_encoder else [])
               if plain else [f"--recipe src/propscan/models/{meta['name']}/model.json"])
    if meta.get("quantized") == FP32:
        options.append("--no-quantize")
    dev_options = ("--dev-articles ../shared/data/ptc/dev/dev-articles "
                   "--dev-labels ../shared/data/ptc/dev/dev-task-flc-tc.labels")
    if meta.get("train_sets"):  # a final model: the train-only run first (its dev figures), then train + dev
        commands = [*_train_command("train-only", *options, dev_options), "",
                    *_train_command("model-out", *options, "--articles ../shared/data/ptc/dev/dev-articles "
                                    "--labels ../shared/data/ptc/dev/dev-task-flc-tc.labels --dev-figures-from train-only")]
    else:
        commands = _train_command("model-out", *options, dev_options)
    if plain:  # a model.json as recipe brings the rule it was tuned by
        commands += _retune_command(meta)
    if meta.get("tuned_on", {}).get("fold_networks"):
        commands += _fold_commands(meta, options)
    lines += [
        "## Reproduce",
        "",
        *teachers,  # a teacher comes first: the model's own training reads it
        *(["Then train the model itself:", ""] if teachers else []),
        "```",
        _install_target(cfg),
        *commands,
        "```",
        "",
        f"Training settings: {json.dumps(cfg)}",
        "",
        "Limits: English news only; trained on ~330 articles, so rare techniques (bandwagon, clichés, "
        "straw men) are found far less reliably than loaded language and name calling.",
        "",
    ]
    text = "\n".join(lines)
    (out / "MODEL_CARD.md").write_text(text)
    return text


def _lent_figures(meta: dict) -> list[str]:
    """Card lines for a model trained on dev too: whose dev figures it reports, and why they may overstate it."""
    d = meta["dev"]
    if not d.get("from_run"):
        return []
    text = (f"This model was trained on dev too, so it has no fair dev figures of its own: these are the figures of "
            f"{d['from_run']}, the run with the same recipe trained without dev.")
    if d.get("cross_fitted"):  # the lender's detection was tuned with dev, this model's without
        text += (f" That run's detection was tuned on its held-out articles and dev, this model's on its "
                 f"{meta['tuned_on']['heldout_articles']} held-out articles alone; detection tuned on fewer articles "
                 "scores lower (docs/training.md, \"Final models\"), so these figures may overstate this model.")
    return [text, ""]


def technique_table(meta: dict) -> list[str]:
    """Card lines: each technique's held-out and dev FLC precision, recall and F1, and what that means."""
    rows = meta.get("by_technique", {})
    if not rows:
        return []
    d0 = meta.get("dev", {})
    lines = [f"FLC by technique (tuning: {_tuning_data(meta)}, in sample; dev: "
             + ("cross-fitted" if d0.get("cross_fitted") else "never used for tuning")
             + (f", of {d0['from_run']}" if d0.get("from_run") else "") + "):", "",
             "| technique | reliability | tuning P / R / F1 | dev P / R / F1 | dev gold spans |", "|---|---|---|---|---:|"]
    for t, r in rows.items():
        h, d = r["tuning"], r.get("dev")
        prf = lambda x: f"{x['precision']:.2f} / {x['recall']:.2f} / {x['f1']:.2f}"  # noqa: E731
        words = reliability(d["precision"], d.get("n_pred")) if d else reliability(h["precision"], h.get("n_pred"))
        lines.append(f"| {BY_ID[t].name} | {words} | {prf(h)} | {prf(d) if d else '–'} | {d['n_gold'] if d else '–'} |")
    return lines


def _tuning_data(meta: dict) -> str:
    on = meta.get("tuned_on", {})
    where = " + ".join(meta["train_sets"]) if meta.get("train_sets") else PTC_TRAIN  # a final model holds out dev ones too
    held = f"the {on['heldout_articles']} held-out {where} articles" if on else f"the held-out rest of {where}"
    if on.get("fold_networks"):  # stacking.py
        held = (f"the {on['heldout_articles']} {where} articles, each read by a network of this recipe that never trained on it "
                f"(this one for its held-out eighth, {on['fold_networks']} fold network{'s' if on['fold_networks'] != 1 else ''} for the rest)")
    return held + (f" and the {on['dev_articles']} PTC dev articles" if on.get("dev_articles") else "")


def _teacher_restore(teachers: list[dict]) -> list[str]:
    """Card lines: a distilled model's reproduce command needs its teacher: an earlier version of this
    repository shipped it (git history holds it), or it is trained first from its own settings."""
    lines = []
    for t in teachers:
        if t.get("shipped"):
            lines += [
                f"Distilled from {t['name']} {t['version']}, the `{t['folder']}` model propscan ships "
                f"(`--teacher {t['folder']}`{'; `make install-accurate` first' if t['folder'] == 'accurate' else ''}). "
                "A later propscan may ship another version: run these at the commit that shipped this one.",
                "",
            ]
            continue
        if "train_config" in t:
            lines += _teacher_training(t)
            continue
        shipped = f"src/propscan/models/{t['name']}"
        lines += [
            f"Distilled from {t['name']} {t['version']}: `{t['folder']}` must hold that model first. "
            "It shipped in this repository before; restore it from git history:",
            "",
            "```",
            f"rev=$(git log --reverse --format=%H -S'\"version\": \"{t['version']}\"' -- {shipped}/model.json | head -1)",
            f"mkdir -p {t['folder']}",
            f"for f in model.json model.onnx heads.npz tokenizer.json; do git show \"$rev:{shipped}/$f\" > {t['folder']}/$f; done",
            "```",
            "",
        ]
    return lines


def _teacher_training(t: dict) -> list[str]:
    """Card lines that train a teacher which never shipped, with the settings it was trained with."""
    cfg = t["train_config"]
    recipe = f"{t['folder']}.recipe.json"
    return [
        f"Distilled from {t['name']} {t['version']}, a teacher that did not ship: `{t['folder']}` must hold it first. "
        "Train it with its own settings (training is not bit-for-bit repeatable across machines, so the figures "
        "will differ a little):",
        "",
        "```",
        _install_target(cfg),
        f"echo {shlex.quote(json.dumps(cfg))} > {recipe}",
        *_train_command(t["folder"], f"--recipe {recipe}", *(["--no-quantize"] if t.get("no_quantize") else [])),
        "```",
        "",
    ]


def _train_command(out: str, *options: str) -> list[str]:
    """A `propscan train` on PTC train writing to ``out``, one option per continued line."""
    lines = [".venv/bin/propscan train --articles ../shared/data/ptc/train/train-articles",
             f"    --labels ../shared/data/ptc/train/train-task-flc-tc.labels --out {out}",
             *(f"    {o}" for o in options)]
    return [line + " \\" for line in lines[:-1]] + lines[-1:]


def _fold_commands(meta: dict, options: list[str]) -> list[str]:
    """The fold networks a model tuned out of fold needs (stacking.py), then that retune."""
    cfg = with_defaults(meta["train_config"])
    folds = [f for f in range(cfg["val_every"]) if f != cfg["val_fold"]]
    return ["", f"# the fold networks, then the tuning on every train article out of fold (--val-fold {folds[0]} to {folds[-1]})",
            *_train_command("fold-N", *options, "--val-fold N"),
            f".venv/bin/python scripts/retune_model.py --model model-out --version {meta['version']} "
            + " ".join([*_rule_flags(meta), "--folds", *(f"fold-{f}" for f in folds)])]


def _retune_command(meta: dict) -> list[str]:
    """`propscan train` without a model.json as recipe tunes by today's rule (tune.Rule()); a model tuned
    by another one was retuned after training, by the options that rule differs in."""
    if "tuning_rule" not in meta or Rule.recorded(meta) == Rule():
        return []
    return [f".venv/bin/python scripts/retune_model.py --model model-out --version {meta['version']} " + " ".join(_rule_flags(meta))]


def _rule_flags(meta: dict) -> list[str]:
    """The rule options (tune.add_rule_options) that give the rule ``meta`` records, over today's."""
    rule, today = Rule.recorded(meta).to_json(), Rule().to_json()
    return [f"--{name.replace('_', '-')} {'none' if value is None else value}" for name, value in rule.items() if value != today[name]]


def _install_target(cfg: dict) -> str:
    """The make target that installs what training with these settings needs (MPNet has its own)."""
    encoder = cfg.get("encoder", TrainConfig().encoder)
    return "make install-train install-accurate" if encoder_info(encoder)[0] == "propscan-mpnet" else "make install-train"


def _runtime(runtime: dict) -> dict:
    """model.json's "runtime" field, absent when the model runs as every model did before it existed."""
    return {"runtime": runtime} if runtime else {}


def _fp32_dev_figures(checkpoint: Path, out: Path, dev, tuned: dict, padding_bias: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(checkpoint, Path(tmp), quantize=False, padding_bias=padding_bias)
        shutil.copy(out / "model.json", fp32 / "model.json")
        model = Model(fp32)
        model.configure(tuned)
        report = evaluate(model, dev[0], dev[1])
    return {"si_f1": round(report.si.f1, 4), "flc_f1": round(report.flc.f1, 4), "tc_f1": round(report.tc.f1, 4)}


def build_model_folder(
    articles: dict[str, str],
    labels: list[Label],
    out: Path,
    cfg: TrainConfig,
    dev: tuple[dict[str, str], list[Label]] | None = None,
    quantize: bool = True,
    log=print,
    sources: list[str] | None = None,
    dev_from: Path | None = None,
    rule: Rule = Rule(),
) -> dict:
    # the PyTorch checkpoint stays beside the runtime files (benchmarks/speed.py --checkpoint compares it);
    # copy_model ships only the runtime files
    ckpt = train_soup(articles, labels, out / "checkpoint", cfg, log=log)
    meta = finish_model_folder(ckpt, out, articles, labels, cfg, dev=dev, quantize=quantize, log=log,
                               sources=sources, dev_from=dev_from, rule=rule)
    log(json.dumps({k: meta[k] for k in ("version", "decoding", "tuning_flc_f1")}, indent=1))
    return meta


def copy_model(src: Path, dst: Path) -> None:
    """Replace the model folder at dst with src's shipped files: the runtime files, or for a model trained
    with adapters its package (the network is assembled from it on the user's machine, see assemble)."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    if is_package(src):  # what the user's build reads: the files a package's fingerprint covers
        names = (*source_files(json.loads((src / "package.json").read_text())), "MODEL_CARD.md")
    else:
        names = ("model.onnx", "tokenizer.json", "heads.npz", "model.json", "MODEL_CARD.md")
    for name in names:
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
