"""PyTorch -> ONNX for the encoder heads (BERT family), and the PyTorch reference the gates compare against.

transformers 5 notes:
* the model is loaded with eager attention: the SDPA path traces into a pattern ORT's BERT fusion does not
  recognise (0 of 12 attention blocks fused), eager fuses every block;
* the TorchScript exporter (`dynamo=False`, deprecated in torch 2.13 but working) is the default because its graph
  fuses; the dynamo exporter (`dynamo=True`) gives a correct graph that ORT's fusion leaves alone;
* every BERT export takes `token_type_ids`, and all axes but the hidden ones are dynamic (batch, choices, length).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .heads import BERT_INPUTS, Head

log = logging.getLogger("mengzi.export")


class EncoderHead(torch.nn.Module):
    """Plain tensors in and out (ONNX has no ModelOutput): (ids, mask, types) -> the head's outputs."""

    def __init__(self, model, head: Head):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return tuple(getattr(out, name) for name in self.head.outputs)


def load_model(folder: str | os.PathLike, head: Head):
    from mengzi.models.load import load

    kwargs = {"attn_implementation": "eager"} if not head.generative else {}
    model, tokenizer = load(folder, task=head.model_task, **kwargs)
    return model.eval(), tokenizer


def dummy_inputs(head: Head, pad_id: int = 0) -> tuple[torch.Tensor, ...]:
    shape = (2, 3, 16) if head.choice_axis else (2, 16)
    ids = torch.randint(200, 1000, shape)
    mask = torch.ones_like(ids)
    mask[1, ..., 10:] = 0  # a padded row, so no shape is specialised to "all ones"
    ids[1, ..., 10:] = pad_id
    return ids, mask, torch.zeros_like(ids)


def export_encoder(model, head: Head, path: str | os.PathLike, opset: int = 17, dynamo: bool = False) -> Path:
    axes = {0: "batch", 1: "choices", 2: "length"} if head.choice_axis else {0: "batch", 1: "length"}
    out_axes = {"logits": {0: "batch", 1: "length"} if head.kind in ("fill_mask", "token_classification")
                else {0: "batch"} | ({1: "choices"} if head.choice_axis else {}),
                "start_logits": {0: "batch", 1: "length"}, "end_logits": {0: "batch", 1: "length"}}
    dynamic_axes = {name: axes for name in BERT_INPUTS} | {o: out_axes[o] for o in head.outputs}
    args = dummy_inputs(head, model.config.pad_token_id or 0)
    wrapper = EncoderHead(model, head).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings on every export are noise to users
        if dynamo:
            shapes = {name: {k: torch.export.Dim.AUTO for k in axes} for name in BERT_INPUTS}
            torch.onnx.export(wrapper, args, str(path), input_names=list(BERT_INPUTS), output_names=list(head.outputs),
                              dynamic_shapes=shapes, opset_version=max(opset, 18), dynamo=True, external_data=False)
        else:
            torch.onnx.export(wrapper, args, str(path), input_names=list(BERT_INPUTS), output_names=list(head.outputs),
                              dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False)
    return Path(path)


def torch_outputs(model, head: Head, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        out = EncoderHead(model, head)(**{k: torch.from_numpy(feeds[k]) for k in BERT_INPUTS})
    return [o.float().numpy() for o in out]
