"""The fine-tuning recipe as dataclasses. `recipes/clue/<task>.yaml` are their serialisation; flags override:

    mengzi clue run afqmc --model runs/pretrain/mengzi-bert-tiny/model --recipe recipes/clue/afqmc-tiny.yaml \
        --train.epochs 2 --techniques '{fgm: {epsilon: 1.0}, ema: {decay: 0.999}}'
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..engine.args import TrainArgs


@dataclass
class TrainConfig(TrainArgs):
    """The engine's `TrainArgs` with fine-tuning's defaults, plus how examples become features."""

    lr: float = option(3e-5, "peak learning rate (the head's; layer-wise decay scales the layers below)", min=0)
    keep_last: int = option(1, "checkpoints kept while training (older ones are deleted)", min=1)
    max_seq_len: int = option(128, "tokens per sequence (per choice for multiple choice, per window for spans)", min=8)
    doc_stride: int = option(128, "spans: tokens between the starts of consecutive windows over a long context", min=1)
    max_answer_len: int = option(64, "spans: longest answer in tokens at decoding", min=1)
    group_by_length: bool = option(False, "batch examples of similar length together inside shuffled mega-batches of "
                                          "50 batches (less padding, faster; measured to cost accuracy on small "
                                          "data, so off by default, as in HF's Trainer)")
    eval_batch_size: int = option(64, "examples per forward pass at evaluation", min=1)
    max_train_examples: int = option(0, "use only the first N training examples (0: all); for smoke runs", min=0)
    max_eval_examples: int = option(0, "use only the first N dev examples (0: all); for smoke runs (test sets are "
                                       "always predicted whole: a submission must cover every id)", min=0)


@dataclass
class FinetuneConfig:
    model: str = option("", "what to fine-tune: a folder (e.g. a pre-training run's model/), preset or hub id")
    out: str = option("", "run folder: config, metrics, predictions, the best model (out/model), logs, curves")
    init_from: str = option("", "transfer learning: start from another task's fine-tuned model (its folder or run "
                                "folder); layers load, a head of a different shape starts fresh")
    train: TrainConfig = option(TrainConfig(), "the optimisation")
    techniques: dict = option({}, "fine-tuning technique -> its options (see `mengzi finetune --help`): fgm, pgd, "
                                  "ema, rdrop, llrd, distill, choice_smoothing, swap_pairs, lora")
    seeds: list[int] = option([], "train once per seed and average their logits (an ensemble); empty: train.seed",
                              min=0)
    resume: bool = option(False, "continue from the run folder's last complete checkpoint")
    overwrite: bool = option(False, "start afresh in a run folder that already has results")
    data: str = option("", "data folder for data:REL paths (default $DATA or ../shared/data)")
