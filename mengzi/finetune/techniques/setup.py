"""Techniques that change what is trained and on what: layer-wise learning-rate decay, LoRA, pair-order swapping."""

from __future__ import annotations

import logging
import re

from .base import Technique, register_technique

log = logging.getLogger("mengzi.finetune")
_LAYER = re.compile(r"\.layer\.(\d+)\.")


@register_technique("llrd")
class LayerwiseLRDecay(Technique):
    """Layer-wise learning-rate decay (Howard & Ruder 2018; ELECTRA): the head and pooler train at the peak lr,
    encoder layer i (0 = lowest) at lr x decay^(L - i), the embeddings at lr x decay^(L + 1). Lower layers hold
    general language knowledge that fine-tuning should disturb least."""

    def __init__(self, decay: float = 0.9):
        if not 0 < decay <= 1:
            raise ValueError("decay must be in (0, 1]")
        self.decay = decay

    def lr_scale(self, param_name: str, num_layers: int) -> float:
        match = _LAYER.search(param_name)
        if match:
            depth = num_layers - int(match.group(1))
        elif ".embeddings." in param_name or param_name.startswith("embeddings."):
            depth = num_layers + 1
        else:  # pooler, classifier, qa_outputs
            depth = 0
        return self.decay**depth


@register_technique("lora")
class LoRA(Technique):
    """Low-rank adapters through peft on the attention projections; the head is trained in full. The adapters are
    merged into the weights before the model is saved, so the run's model/ is a plain transformers checkpoint that
    exports like any other."""

    def __init__(self, r: int = 8, alpha: int = 16, dropout: float = 0.1,
                 target_modules: list[str] | None = None):
        if r < 1:
            raise ValueError("r must be >= 1")
        self.r, self.alpha, self.dropout = r, alpha, dropout
        self.target_modules = target_modules or ["query", "value"]

    def prepare_model(self, model, kind_name: str):
        from peft import LoraConfig, get_peft_model

        heads = [name for name in ("classifier", "qa_outputs", "pooler") if hasattr(model, name) or
                 hasattr(getattr(model, "bert", None), name)]
        config = LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                            target_modules=self.target_modules, modules_to_save=heads)
        wrapped = get_peft_model(model, config)
        trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
        total = sum(p.numel() for p in wrapped.parameters())
        log.info("lora: r=%d on %s; %d of %d parameters trainable (%.1f%%)", self.r, self.target_modules, trainable,
                 total, 100 * trainable / total)
        return wrapped

    def finalize_model(self, model):
        import copy

        # merge a copy: merge_and_unload() strips the adapters from the model it is called on, and training goes on
        return copy.deepcopy(model).merge_and_unload() if hasattr(model, "merge_and_unload") else model


@register_technique("swap_pairs")
class SwapPairs(Technique):
    """Data augmentation for symmetric pair tasks (AFQMC: is A a paraphrase of B): every training pair is added a
    second time in the other order, so the model cannot lean on which sentence comes first."""

    kinds = ("classification",)

    def __init__(self):
        pass

    def prepare_train_data(self, dataset, kind_name: str):
        from datasets import concatenate_datasets

        if "text_pair" not in dataset.column_names or not any(dataset["text_pair"]):
            raise ValueError("swap_pairs needs a pair task (text and text_pair)")
        swapped = dataset.map(lambda row: {"text": row["text_pair"], "text_pair": row["text"]})
        log.info("swap_pairs: %d training pairs -> %d", len(dataset), 2 * len(dataset))
        return concatenate_datasets([dataset, swapped])
