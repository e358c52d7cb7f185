"""Export heads: what each exported graph takes and gives, and how its output becomes an answer. Torch-free.

One line registers a head. `model_task` is the `mengzi.models.load.TASKS` key the PyTorch model is loaded with;
`kind` names the post-processing (`mengzi.finetune.encoding` for the three fine-tuning kinds); `choice_axis` says the
inputs are [batch, choices, length] (multiple choice) rather than [batch, length].
"""

from __future__ import annotations

from dataclasses import dataclass

BERT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # BERT exports always take token_type_ids


@dataclass(frozen=True)
class Head:
    name: str
    model_task: str
    kind: str
    outputs: tuple[str, ...]
    families: tuple[str, ...] = ("bert",)
    choice_axis: bool = False
    generative: bool = False


HEADS: dict[str, Head] = {}


def register_head(head: Head) -> Head:
    HEADS[head.name] = head
    return head


register_head(Head("sequence-classification", "sequence-classification", "classification", ("logits",)))
register_head(Head("multiple-choice", "multiple-choice", "multiple_choice", ("logits",), choice_axis=True))
register_head(Head("question-answering", "question-answering", "span", ("start_logits", "end_logits")))
register_head(Head("fill-mask", "masked-lm", "fill_mask", ("logits",)))
register_head(Head("token-classification", "token-classification", "token_classification", ("logits",)))
register_head(Head("seq2seq-lm", "seq2seq-lm", "seq2seq", (), families=("t5",), generative=True))
register_head(Head("causal-lm", "causal-lm", "causal_lm", (), families=("gpt-neo",), generative=True))

# architecture suffix (config.architectures[0]) -> head, for `--task auto`
ARCHITECTURES = {
    "ForSequenceClassification": "sequence-classification",
    "ForMultipleChoice": "multiple-choice",
    "ForQuestionAnswering": "question-answering",
    "ForMaskedLM": "fill-mask",
    "ForPreTraining": "fill-mask",
    "ForTokenClassification": "token-classification",
    "ForConditionalGeneration": "seq2seq-lm",
    "ForCausalLM": "causal-lm",
}
# fine-tuning kind (config.mengzi_task_kind, written by `mengzi clue run` / `mengzi finetune`) -> head
KIND_HEADS = {"classification": "sequence-classification", "multiple_choice": "multiple-choice",
              "span": "question-answering"}


def get_head(name: str) -> Head:
    if name not in HEADS:
        raise ValueError(f"unknown export head {name!r}; known: {', '.join(HEADS)}")
    return HEADS[name]


def detect_head(config: dict) -> str:
    """The head of a checkpoint from its config.json: the fine-tuning kind if mengzi wrote one, else the
    architecture, else the family's pre-training head."""
    if config.get("mengzi_task_kind") in KIND_HEADS:
        return KIND_HEADS[config["mengzi_task_kind"]]
    for arch in config.get("architectures") or []:
        for suffix, head in ARCHITECTURES.items():
            if arch.endswith(suffix):
                return head
    by_type = {"bert": "fill-mask", "t5": "seq2seq-lm", "gpt_neo": "causal-lm"}
    if config.get("model_type") in by_type:
        return by_type[config["model_type"]]
    raise ValueError(f"cannot tell which head to export from architectures={config.get('architectures')} "
                     f"model_type={config.get('model_type')}; pass --task (one of {', '.join(HEADS)})")
