"""The model side of `mengzi.clue.prompts`: turn a template and examples into prompts for a BERT (cloze), a T5
(sentinel) or a GPT-Neo (continuation), score every label word with `mengzi.textgen.scoring`, pick the best; and
PET few-shot fine-tuning of a BERT on the shots. Imports torch, so `mengzi.clue.prompts` imports it on use.
"""

from __future__ import annotations

import copy
import logging

import torch

from mengzi.engine import loop
from mengzi.textgen import scoring

from .prompts import example_fields, fill, label_words, split_at_mask

log = logging.getLogger("mengzi.clue")

SENTINEL = "<extra_id_0>"  # T5's first span-corruption sentinel: the slot in the source, the start of the target
CLOZE_SLOT = "[MASK]"
DEMO_SEPARATOR = "\n"
FAMILY_TASK = {"bert": "masked-lm", "t5": "seq2seq-lm", "gpt-neo": "causal-lm"}


def argmax(row: list[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)


class PromptScorer:
    """Label-word scores of examples under one template, for one model. `options`: a PromptConfig (or anything
    with batch_size, normalize, max_length, pet_steps, pet_lr, seed)."""

    def __init__(self, model, tokenizer, family: str, task: str, options):
        if family not in FAMILY_TASK:
            raise ValueError(f"prompting takes a BERT, T5 or GPT-Neo model, not {family}")
        self.model, self.tokenizer, self.family, self.task, self.options = model, tokenizer, family, task, options
        self.words = label_words(task)

    @classmethod
    def load(cls, cfg, task: str) -> PromptScorer:
        from mengzi.models.load import family_of, load

        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        model, tokenizer = load(cfg.model)  # each family's pre-training model: the heads FAMILY_TASK names
        return cls(model, tokenizer, family_of(model.config), task, cfg)

    # ------------------------------------------------------------------------------------------ the prompts
    def cloze_text(self, template: str, example: dict) -> str:
        return fill(template, example_fields(self.task, example), CLOZE_SLOT)

    def demonstrations(self, template: str, shots: list[dict]) -> str:
        """The shots as filled templates (gold label word in the slot), one a line, before the query."""
        return "".join(fill(template, example_fields(self.task, s), self.words[s["label"]]) + DEMO_SEPARATOR
                       for s in shots)

    def scores(self, template: str, examples: list[dict], shots: list[dict] | None = None,
               model=None) -> list[list[float]]:
        """scores[i][j]: label word j in the slot of the template filled with examples[i]."""
        o, model = self.options, model or self.model
        if self.family == "bert":
            texts = [self.cloze_text(template, e) for e in examples]
            return scoring.score_label_words(model, self.tokenizer, texts, self.words, o.batch_size, o.normalize,
                                             CLOZE_SLOT, o.max_length)
        demos = self.demonstrations(template, shots or [])
        if self.family == "t5":
            prompts = [demos + fill(template, example_fields(self.task, e), SENTINEL) for e in examples]
            candidates = [[SENTINEL + w for w in self.words]] * len(examples)
        else:
            parts = [split_at_mask(template, example_fields(self.task, e)) for e in examples]
            prompts = [demos + head for head, _ in parts]
            candidates = [[w + tail for w in self.words] for _, tail in parts]
        return scoring.score_continuations(model, self.tokenizer, prompts, candidates, o.batch_size, o.normalize,
                                           o.max_length)

    def predict(self, template: str, examples: list[dict], shots: list[dict] | None = None) -> list[int]:
        """The label index whose word scores highest, per example. BERT with shots: PET-tuned copy first."""
        model = None
        if shots and self.family == "bert":
            model = pet_finetune(self, template, shots)
            shots = None
        return [argmax(row) for row in self.scores(template, examples, shots, model)]


# ----------------------------------------------------------------------------------------------- PET few-shot
def cloze_word_logprobs(model, tokenizer, texts: list[str], words: list[str], max_length: int = 512) -> torch.Tensor:
    """(len(texts), len(words)) summed log-probabilities of each word in each text's slot, differentiable (the
    training side of `scoring.score_label_words`)."""
    word_ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
    pad = tokenizer.pad_token_id or 0
    columns: dict[int, list[int]] = {}
    for j, ids in enumerate(word_ids):
        columns.setdefault(len(ids), []).append(j)
    columns_scores: list[torch.Tensor | None] = [None] * len(words)
    for n, js in columns.items():
        built = [scoring.cloze_ids(tokenizer, t, n, CLOZE_SLOT, max_length) for t in texts]
        width = max(len(ids) for ids, _ in built)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r, _ in built])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in built])
        logprobs = model(input_ids=ids, attention_mask=mask).logits.log_softmax(-1)
        first = torch.tensor([f for _, f in built])
        positions = first[:, None] + torch.arange(n)[None, :]  # (B, n)
        at = logprobs[torch.arange(len(texts))[:, None], positions]  # (B, n, vocab)
        targets = torch.tensor([word_ids[j] for j in js])  # (W_n, n)
        picked = at[:, torch.arange(n)[None, :], targets]  # (B, W_n, n)
        for k, j in enumerate(js):
            columns_scores[j] = picked[:, k].sum(-1)
    return torch.stack(columns_scores, dim=1)


class PetStage(loop.Stage):
    """PET on the engine: cross-entropy over the label words' cloze scores of a random batch of shots per step."""

    name = "PET"

    def __init__(self, scorer: PromptScorer, texts: list[str], labels: torch.Tensor, model):
        super().__init__(model)
        self.scorer, self.texts, self.labels = scorer, texts, labels

    def start(self, run: loop.Run) -> None:
        self.generator = torch.Generator().manual_seed(self.scorer.options.seed)
        for _ in range(run.step):  # a resumed run draws the batches an unkilled one would
            torch.randperm(len(self.texts), generator=self.generator)

    def micro_batches(self, run: loop.Run) -> list[loop.Micro]:
        batch = torch.randperm(len(self.texts), generator=self.generator)[: self.scorer.options.batch_size]
        return [loop.Micro(batch, len(batch))]

    def loss(self, run: loop.Run, batch):
        s = self.scorer
        logits = cloze_word_logprobs(run.model, s.tokenizer, [self.texts[i] for i in batch], s.words,
                                     s.options.max_length)
        return torch.nn.functional.cross_entropy(logits, self.labels[batch]), {}

    def save_model(self, run: loop.Run, folder) -> None:
        """Nothing to write: the caller keeps the trained copy."""


def pet_finetune(scorer: PromptScorer, template: str, shots: list[dict]):
    """A copy of the BERT trained on the shots (PET) through the engine (`loop.train_in_place`): constant lr, no
    clipping, fp32."""
    from mengzi.engine import runfolder
    from mengzi.engine.args import TrainArgs

    o = scorer.options
    torch.manual_seed(o.seed)
    model = copy.deepcopy(scorer.model).train()
    texts = [scorer.cloze_text(template, s) for s in shots]
    labels = torch.tensor([s["label"] for s in shots])
    args = TrainArgs(max_steps=o.pet_steps, batch_size=o.batch_size, micro_batch_size=o.batch_size, lr=o.pet_lr,
                     schedule="constant", warmup_ratio=0.0, clip_norm=0.0, mixed_precision="no", seed=o.seed,
                     log_every=max(1, o.pet_steps), save_every=10**9)
    stage = PetStage(scorer, texts, labels, model)
    state, _ = loop.train_in_place(stage, args, runfolder.RunInfo("pet", task=template))
    log.info("PET: %d steps on %d shots", state["step"], len(shots))
    return model.eval()
