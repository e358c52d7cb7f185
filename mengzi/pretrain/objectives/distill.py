"""Knowledge distillation of a shallower BERT from a deeper teacher (how Langboat made mengzi-bert-L6-H768).

Losses, on the same dynamically masked input the student sees:
* soft MLM logits: KL(teacher || student) at the masked positions, temperature T, scaled by T^2;
* hidden states: MSE between student layer i and teacher layer i * L_teacher / L_student (embeddings to
  embeddings), over real tokens, through a learned projection when the widths differ.

`init_from_teacher` starts the student from the teacher's embeddings, MLM head and every k-th layer, the usual
initialisation for layer-dropping distillation. The teacher is frozen and never saved with the student.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...config import option
from .base import Objective, ObjectiveConfig, Step, register_objective


@dataclass
class DistillConfig(ObjectiveConfig):
    teacher: str = option("", "teacher checkpoint (folder or hub id) with the same tokenizer")
    temperature: float = option(1.0, "softmax temperature of the logit loss")
    logit_weight: float = option(1.0, "weight of the soft-logit KL term")
    hidden_weight: float = option(1.0, "weight of the hidden-state MSE term")
    init_from_teacher: bool = option(True, "initialise a fresh student from the teacher's embeddings and layers")


@register_objective("distill")
class Distillation(Objective):
    families = ("bert",)
    Config = DistillConfig
    order = 60
    needs_hidden_states = True
    metric_names = ("kl", "hidden_mse", "teacher_agreement")

    def __init__(self, cfg, tokenizer, model_config, family):
        super().__init__(cfg, tokenizer, model_config, family)
        if not cfg.teacher:
            raise ValueError("objectives.distill.teacher: name the teacher checkpoint")
        from ...models.load import load

        self.teacher, teacher_tokenizer = load(cfg.teacher, task="pretraining")
        if teacher_tokenizer.get_vocab() != tokenizer.get_vocab():
            raise ValueError(f"objectives.distill.teacher: {cfg.teacher} has a different vocabulary than the student")
        self.teacher.requires_grad_(False).eval()
        t, s = self.teacher.config, model_config
        self.layer_map = [0] + [i * t.num_hidden_layers // s.num_hidden_layers for i in range(1, s.num_hidden_layers + 1)]
        self.project = t.hidden_size != s.hidden_size

    def modules(self):
        if not self.project:
            return {}
        return {"distill_proj": torch.nn.Linear(self.model_config.hidden_size, self.teacher.config.hidden_size)}

    def setup(self, model, fresh: bool) -> None:
        if fresh and self.cfg.init_from_teacher:
            copy_teacher_layers(self.teacher, model, self.layer_map)

    def loss(self, step: Step):
        b = step.batch
        if self.teacher.device != b["input_ids"].device:
            self.teacher.to(b["input_ids"].device)
        with torch.no_grad():
            t_out = self.teacher.bert(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                                      token_type_ids=b["token_type_ids"], output_hidden_states=True)
            where = b["mlm_labels"] != -100
            t_logits = self.teacher.cls.predictions(t_out.last_hidden_state[where]).float()
        s_logits = step.mlm_logits.float()  # the mlm objective ran first (order 10) on the same positions
        temp = self.cfg.temperature
        kl = F.kl_div(F.log_softmax(s_logits / temp, -1), F.log_softmax(t_logits / temp, -1), log_target=True,
                      reduction="batchmean") * temp**2
        real = b["attention_mask"].bool()
        proj = step.extras["distill_proj"] if self.project else (lambda h: h)
        s_hidden = step.encoder.hidden_states
        mse = sum(F.mse_loss(proj(s_hidden[i][real]).float(), t_out.hidden_states[j][real].float())
                  for i, j in enumerate(self.layer_map)) / len(self.layer_map)
        agree = (s_logits.argmax(-1) == t_logits.argmax(-1)).float().mean() if len(s_logits) else kl.new_zeros(())
        return (self.cfg.logit_weight * kl + self.cfg.hidden_weight * mse,
                {"kl": kl.detach(), "hidden_mse": mse.detach(), "teacher_agreement": agree})


def copy_teacher_layers(teacher, student, layer_map: list[int]) -> None:
    """Embeddings, MLM head and teacher layer layer_map[i] into student layer i-1 (same widths only)."""
    if teacher.config.hidden_size != student.config.hidden_size:
        raise ValueError("init_from_teacher needs equal hidden sizes; set init_from_teacher: false")
    student.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())
    for i, j in enumerate(layer_map[1:]):
        student.bert.encoder.layer[i].load_state_dict(teacher.bert.encoder.layer[j - 1].state_dict())
    student.cls.load_state_dict(teacher.cls.state_dict(), strict=False)
    if getattr(student.bert, "pooler", None) is not None and getattr(teacher.bert, "pooler", None) is not None:
        student.bert.pooler.load_state_dict(teacher.bert.pooler.state_dict())
