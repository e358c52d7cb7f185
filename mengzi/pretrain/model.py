"""The trained object: a Mengzi model, its extra heads and its objectives in one `nn.Module`.

One module, so that accelerate wraps a single thing (DDP/FSDP see every trainable parameter, checkpoints hold
them all) and the encoder runs once per step however many objectives read it.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..models.heads import PretrainingHeads
from .objectives import OBJECTIVES, Objective, Step

log = logging.getLogger(__name__)

# the transformers head each family pre-trains with (BERT: MLM head + pooler + seq_relationship for SOP)
PRETRAIN_TASK = {"bert": "pretraining", "t5": "seq2seq-lm", "gpt-neo": "causal-lm"}


class PretrainModule(nn.Module):
    def __init__(self, model, heads: PretrainingHeads, objectives: list[Objective]):
        super().__init__()
        self.model = model
        self.heads = heads
        self.extras = nn.ModuleDict({k: m for o in objectives for k, m in o.modules().items()})
        self.objectives = sorted(objectives, key=lambda o: o.order)  # a plain list: not parameters
        self.hidden_states = any(o.needs_hidden_states for o in objectives)

    def collate(self, batch: dict[str, torch.Tensor], rng) -> dict[str, torch.Tensor]:
        for objective in self.objectives:
            objective.collate(batch, rng)
        return batch

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        step = Step(self.model, self.heads, self.extras, batch, self.hidden_states)
        total, metrics = 0.0, {}
        for objective in self.objectives:
            loss, extra = objective.loss(step)
            total = total + objective.cfg.weight * loss
            metrics[f"{objective.name}_loss"] = loss.detach()
            metrics |= {f"{objective.name}_{k}": v.detach() for k, v in extra.items()}
        metrics["loss"] = total.detach()
        return total, metrics


def build_objectives(specs: dict, tokenizer, model_config, family: str) -> list[Objective]:
    from ..config import ConfigError, from_dict

    if not specs:
        raise ConfigError("objectives: name at least one (registered: " + ", ".join(sorted(OBJECTIVES)) + ")")
    out = []
    for name, options in specs.items():
        if name not in OBJECTIVES:
            raise ConfigError(f"objectives.{name}: unknown objective; registered: {sorted(OBJECTIVES)}")
        cls = OBJECTIVES[name]
        cfg = from_dict(cls.Config, options or {}, where=f"objectives.{name}")
        out.append(cls(cfg, tokenizer, model_config, family))
    names = {o.name for o in out}
    if "distill" in names and "mlm" not in names:
        raise ConfigError("objectives.distill compares masked-LM logits: add the mlm objective too")
    return out


def build_heads(model_config, objectives: list[Objective], init_from: str | None) -> PretrainingHeads:
    """Heads the objectives ask for; continued pre-training keeps trained heads whose labels still match."""
    dropout = getattr(model_config, "hidden_dropout_prob", 0.1)  # heads drop out as the backbone does
    specs = {name: {**spec, "dropout": dropout} for o in objectives for name, spec in o.heads().items()}
    hidden = getattr(model_config, "hidden_size", None) or model_config.d_model
    heads = PretrainingHeads(hidden, specs)
    if init_from and specs:
        from ..models.load import model_folder

        saved = PretrainingHeads.load(model_folder(init_from, None))
        for name in specs:
            if saved is not None and name in saved and saved.specs[name].get("labels") == heads.specs[name]["labels"]:
                heads[name].load_state_dict(saved[name].state_dict())
                log.info("head %s: continued from %s", name, init_from)
    return heads


def merged_packing(objectives: list[Objective]) -> dict:
    """Packer settings from all objectives: tag schemes add up, the rest must agree."""
    out: dict = {"tag_schemes": ()}
    for o in objectives:
        for key, value in o.packing().items():
            if key == "tag_schemes":
                out[key] = tuple(dict.fromkeys(out[key] + tuple(value)))
            elif key in out and out[key] != value and value is not None and out[key] is not None:
                raise ValueError(f"objectives disagree on packing {key}: {out[key]!r} vs {value!r}")
            elif value is not None or key not in out:
                out[key] = value
    return out
