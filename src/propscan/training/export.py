"""Export a training checkpoint to the runtime format: ONNX (optionally int8) + span head in numpy.

Needs the ``train`` extra. The written folder is what ``propscan.model.Model`` loads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .train import load_checkpoint


def export_onnx(checkpoint: Path, out: Path, quantize: bool = True) -> Path:
    """Write model.onnx (int8 when ``quantize``), tokenizer.json and heads.npz into ``out``."""
    import torch

    model, cfg = load_checkpoint(checkpoint)
    out.mkdir(parents=True, exist_ok=True)

    class Runtime(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids, attention_mask)

    ids = torch.randint(1000, 2000, (2, 40))
    mask = torch.ones_like(ids)
    fp32 = out / "model.fp32.onnx"
    torch.onnx.export(
        Runtime(model).eval(),
        (ids, mask),
        str(fp32),
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
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # per-channel int8 weights kept MiniLM's logits close to fp32; build.py records the fp32 dev F1
        # beside the int8 one in the model card, so the choice is checked on F1, not logits
        quantize_dynamic(str(fp32), str(out / "model.onnx"), per_channel=True, weight_type=QuantType.QInt8)
        fp32.unlink()
    else:
        fp32.rename(out / "model.onnx")
    shutil.copy(checkpoint / "tokenizer.json", out / "tokenizer.json")
    head = model.span_head
    np.savez(
        out / "heads.npz",
        w1=head[0].weight.detach().numpy(),
        b1=head[0].bias.detach().numpy(),
        w2=head[3].weight.detach().numpy(),
        b2=head[3].bias.detach().numpy(),
    )
    return out


def write_model_json(out: Path, **fields) -> None:
    meta = {"onnx": "model.onnx", **fields}
    (out / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
