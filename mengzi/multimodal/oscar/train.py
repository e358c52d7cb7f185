"""`oscar_train(OscarTrainConfig) -> run folder`: fine-tune an Oscar preset or checkpoint for captioning or retrieval.

Captioning is Oscar's masked-token training under the captioning mask (see `inputs.mask_caption`). Retrieval
trains the matching head on batches that are half matched pairs and half negatives, each negative either a
caption taken from another image or the image's tags replaced by another image's tags ("polluted" tags; with
`num_labels: 3` the two kinds are separate classes as in Oscar's pre-training).

Training runs on the engine (`mengzi.engine`), which writes the run folder (run.json, config.yaml, train.log,
metrics.jsonl, curves.png, checkpoints while training, model/); this module adds metrics.json (the held-out
evaluation) and records the layout and region extractor in model/config.json (`mengzi_oscar`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from mengzi.engine import loop, runfolder

from .config import OscarTrainConfig
from .data import Example, attach_regions, fixture_examples, read_jsonl, synthetic_scenes
from .inputs import caption_ids, encode, mask_caption, tag_ids

log = logging.getLogger(__name__)


def load_examples(cfg: OscarTrainConfig, examples: tuple[list[Example], list[Example]] | None = None
                  ) -> tuple[list[Example], list[Example]]:
    """(train, held-out) examples (those of `read_examples`, or `examples` already read) with region features
    attached."""
    train, held = read_examples(cfg) if examples is None else examples
    extract = dict(boxes=cfg.boxes, encoder=cfg.encoder, grid=cfg.grid, max_regions=cfg.max_regions, seed=cfg.train.seed)
    return attach_regions(train, **extract), attach_regions(held, **extract)


def read_examples(cfg: OscarTrainConfig) -> tuple[list[Example], list[Example]]:
    """(train, held-out) examples, without region features yet. Synthetic held-out scenes come from another seed;
    'fixtures' (six photos) are evaluated on themselves, a smoke test rather than a measurement."""
    if cfg.data == "synthetic":
        train = synthetic_scenes(cfg.train_size, seed=cfg.train.seed)
        held = synthetic_scenes(cfg.eval_size * 3, seed=cfg.train.seed + 10_000)  # extra: retrieval keeps distinct captions
    elif cfg.data == "fixtures":
        train = fixture_examples()
        held = fixture_examples()
    else:
        train = read_jsonl(cfg.data)
        held = read_jsonl(cfg.eval_data) if cfg.eval_data else []
    if cfg.eval_data and cfg.data in ("synthetic", "fixtures"):
        held = read_jsonl(cfg.eval_data)
    return train, held


def build_model(cfg: OscarTrainConfig):
    from mengzi.models.load import init_model, load
    from mengzi.models.presets import PRESETS

    extra = {"num_labels": cfg.num_labels} if cfg.task == "retrieval" else {}
    if cfg.model in PRESETS:
        return init_model(cfg.model, task=cfg.task, seed=cfg.train.seed, overrides={**cfg.overrides, **extra})
    model, tokenizer = load(cfg.model, task=cfg.task, config_overrides={**cfg.overrides, **extra})
    return model, tokenizer


def captioning_batch(examples: list[Example], tokenizer, cfg: OscarTrainConfig, rng: np.random.Generator) -> dict:
    captions, labels = [], []
    for e in examples:
        ids, lab = mask_caption(caption_ids(tokenizer, e.caption, cfg.layout), tokenizer, cfg.mask_prob, rng,
                                cfg.max_masked)
        captions.append(ids)
        labels.append(lab + [-100] * (cfg.layout.caption_len - len(lab)))
    import torch

    batch = encode(tokenizer, captions, [tag_ids(tokenizer, e.tags, cfg.layout) for e in examples],
                   [e.regions.feats for e in examples], cfg.layout)
    batch["labels"] = torch.tensor(labels)
    return batch


def retrieval_batch(examples: list[Example], pool: list[Example], tokenizer, cfg: OscarTrainConfig,
                    rng: np.random.Generator) -> dict:
    """First half matched (label 1), second half negatives: 0 = caption replaced, 2 (or 0 when binary) = tags
    polluted with another image's tags."""
    import torch

    captions, tags, labels = [], [], []
    for k, e in enumerate(examples):
        caption, tag_list, label = e.caption, e.tags, 1
        if k >= len(examples) // 2:
            other = pool[int(rng.integers(len(pool)))]
            if rng.random() < cfg.pollute_prob and other.tags != e.tags:
                tag_list, label = other.tags, 2 if cfg.num_labels == 3 else 0
            elif other.caption != e.caption:
                caption, label = other.caption, 0
        captions.append(caption_ids(tokenizer, caption, cfg.layout))
        tags.append(tag_ids(tokenizer, tag_list, cfg.layout))
        labels.append(label)
    batch = encode(tokenizer, captions, tags, [e.regions.feats for e in examples], cfg.layout)
    batch.pop("caption_len")  # matching attends bidirectionally, as Oscar's retrieval
    batch["labels"] = torch.tensor(labels)
    return batch


def evaluate(model, tokenizer, cfg: OscarTrainConfig, held: list[Example]) -> dict:
    from .evaluate import caption_metrics, distinct_captions, retrieval_metrics

    if not held:
        return {}
    if cfg.task == "captioning":
        held = held[: cfg.eval_size]
        scores, predictions = caption_metrics(model, tokenizer, held, cfg.layout, beams=cfg.beams)
        samples = [{"reference": e.caption, "prediction": p} for e, p in zip(held[:5], predictions, strict=False)]
        return {**scores, "n": len(held), "samples": samples}
    return retrieval_metrics(model, tokenizer, distinct_captions(held, cfg.eval_size), cfg.layout, seed=cfg.train.seed)


class OscarStage(loop.Stage):
    def __init__(self, cfg: OscarTrainConfig, model, tokenizer, train: list[Example], held: list[Example]):
        super().__init__(model)
        self.cfg, self.tokenizer, self.train, self.held = cfg, tokenizer, train, held
        self.name, self.samples = f"oscar {cfg.task}", []

    def micro_batches(self, run: loop.Run) -> list[loop.Micro]:
        t = self.cfg.train
        rng = np.random.default_rng([t.seed, run.step])  # per-step stream: a resumed run draws the same batches
        chosen = [self.train[i] for i in rng.integers(len(self.train), size=t.batch_size)]
        batch = (captioning_batch(chosen, self.tokenizer, self.cfg, rng) if self.cfg.task == "captioning"
                 else retrieval_batch(chosen, self.train, self.tokenizer, self.cfg, rng))
        return [loop.Micro({k: v[i : i + t.micro_batch_size] if getattr(v, "ndim", 0) and len(v) == len(chosen)
                            else v for k, v in batch.items()}, min(t.micro_batch_size, len(chosen) - i))
                for i in range(0, len(chosen), t.micro_batch_size)]

    def loss(self, run: loop.Run, batch):
        device = run.accelerator.device
        output = run.model(**{k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()})
        return (output["loss"] if isinstance(output, dict) else output.loss), {}

    def evaluate(self, run: loop.Run) -> dict:
        model = run.unwrapped.eval()
        metrics = evaluate(model, self.tokenizer, self.cfg, self.held)
        model.train()
        self.samples = metrics.pop("samples", [])
        return metrics

    def finish(self, run: loop.Run) -> dict:
        last = loop.figures(run.state["last_eval"])
        results = {"task": self.cfg.task, "region_features": self.train[0].regions.source, **last}
        log.info("oscar %s: %s", self.cfg.task, results)
        return results | ({"samples": self.samples} if self.samples else {})

    def save_model(self, run: loop.Run, folder: Path) -> None:
        from mengzi.models.load import save_pretrained

        model, cfg = run.unwrapped, self.cfg
        model.config.mengzi_oscar = {**dataclasses.asdict(cfg.layout), "boxes": cfg.boxes, "encoder": cfg.encoder,
                                     "grid": cfg.grid, "seed": cfg.train.seed,
                                     "region_features": self.train[0].regions.source}
        save_pretrained(model, self.tokenizer, folder, overwrite=True)


def oscar_train(cfg: OscarTrainConfig) -> Path:
    from accelerate.utils import set_seed

    out = Path(cfg.out)
    examples = read_examples(cfg)  # users' files read and checked before the run folder exists
    with loop.session(cfg, cfg.train, out, "mengzi oscar train") as accelerator:
        set_seed(cfg.train.seed)
        model, tokenizer = build_model(cfg)
        train, held = load_examples(cfg, examples)
        source = train[0].regions.source
        log.info("region features: %s", source)
        info = runfolder.RunInfo("oscar", task=cfg.task, model=cfg.model, extra={"region_features": source})
        loop.train(OscarStage(cfg, model, tokenizer, train, held), cfg.train, out, accelerator, resume=cfg.resume,
                   info=info)
    return out
