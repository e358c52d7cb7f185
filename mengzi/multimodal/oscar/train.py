"""`oscar_train(OscarTrainConfig) -> run folder`: fine-tune an Oscar preset or checkpoint for captioning or retrieval.

Captioning is Oscar's masked-token training under the captioning mask (see `inputs.mask_caption`). Retrieval
trains the matching head on batches that are half matched pairs and half negatives, each negative either a
caption taken from another image or the image's tags replaced by another image's tags ("polluted" tags; with
`num_labels: 3` the two kinds are separate classes as in Oscar's pre-training).

The run folder holds config.yaml, metrics.jsonl (training log), metrics.json (held-out evaluation), model/
(safetensors + tokenizer; config.json records the layout and region extractor in `mengzi_oscar`) and, while
training, checkpoint/ (model + optimizer + step, written atomically every `save_every` steps; `resume` goes on
from it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from mengzi import atomic
from mengzi.config import save_yaml

from .config import OscarTrainConfig
from .data import Example, attach_regions, fixture_examples, read_jsonl, synthetic_scenes
from .inputs import caption_ids, encode, mask_caption, tag_ids

log = logging.getLogger(__name__)


def load_examples(cfg: OscarTrainConfig, examples: tuple[list[Example], list[Example]] | None = None
                  ) -> tuple[list[Example], list[Example]]:
    """(train, held-out) examples (those of `read_examples`, or `examples` already read) with region features
    attached."""
    train, held = read_examples(cfg) if examples is None else examples
    extract = dict(boxes=cfg.boxes, encoder=cfg.encoder, grid=cfg.grid, max_regions=cfg.max_regions, seed=cfg.seed)
    return attach_regions(train, **extract), attach_regions(held, **extract)


def read_examples(cfg: OscarTrainConfig) -> tuple[list[Example], list[Example]]:
    """(train, held-out) examples, without region features yet. Synthetic held-out scenes come from another seed;
    'fixtures' (six photos) are evaluated on themselves, a smoke test rather than a measurement."""
    if cfg.data == "synthetic":
        train = synthetic_scenes(cfg.train_size, seed=cfg.seed)
        held = synthetic_scenes(cfg.eval_size * 3, seed=cfg.seed + 10_000)  # extra: retrieval keeps distinct captions
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
        return init_model(cfg.model, task=cfg.task, seed=cfg.seed, overrides={**cfg.overrides, **extra})
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
    return retrieval_metrics(model, tokenizer, distinct_captions(held, cfg.eval_size), cfg.layout, seed=cfg.seed)


def oscar_train(cfg: OscarTrainConfig) -> Path:
    import torch
    from tqdm.auto import tqdm

    from mengzi.models.load import save_pretrained
    from mengzi.pretrain.runlog import MetricsLog

    out = Path(cfg.out)
    if (out / "model").exists() and not cfg.overwrite:
        raise FileExistsError(f"{out} holds a finished run; choose another `out` or set overwrite: true")
    examples = read_examples(cfg)  # users' files read and checked before the run folder exists
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, out / "config.yaml", header=f"mengzi oscar train --config {out / 'config.yaml'}")
    torch.manual_seed(cfg.seed)
    model, tokenizer = build_model(cfg)
    train, held = load_examples(cfg, examples)
    source = train[0].regions.source
    log.info("region features: %s", source)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, int(cfg.warmup * cfg.steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (cfg.steps - s) / max(1, cfg.steps - warm))))
    metrics_log = MetricsLog(out / "metrics.jsonl")
    if not cfg.resume and (out / "checkpoint").exists():
        import shutil

        shutil.rmtree(out / "checkpoint")  # a fresh start: a later resume must not pick up a stale checkpoint
    start = _restore(out / "checkpoint", model, optimizer, schedule, metrics_log)
    if start == 0:
        metrics_log.truncate(-1)  # rows of an earlier run in this folder would repeat step numbers
    model.train()
    progress = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"oscar {cfg.task}")
    running = []
    for step in progress:
        rng = np.random.default_rng([cfg.seed, step])  # per-step stream: a resumed run draws the same batches
        chosen = [train[i] for i in rng.integers(len(train), size=cfg.batch_size)]
        batch = (captioning_batch(chosen, tokenizer, cfg, rng) if cfg.task == "captioning"
                 else retrieval_batch(chosen, train, tokenizer, cfg, rng))
        output = model(**batch)
        loss = output["loss"] if isinstance(output, dict) else output.loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        running.append(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            row = {"step": step + 1, "split": "train", "loss": float(np.mean(running)), "lr": schedule.get_last_lr()[0]}
            metrics_log.write(row)
            progress.set_postfix(loss=f"{row['loss']:.3f}")
            running = []
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            _checkpoint(out / "checkpoint", model, optimizer, schedule, step + 1)
    model.eval()
    results = {"task": cfg.task, "steps": cfg.steps, "region_features": source, **evaluate(model, tokenizer, cfg, held)}
    atomic.write_text(out / "metrics.json", json.dumps(results, ensure_ascii=False, indent=2))
    model.config.mengzi_oscar = {**dataclasses.asdict(cfg.layout), "boxes": cfg.boxes, "encoder": cfg.encoder,
                                 "grid": cfg.grid, "seed": cfg.seed, "region_features": source}
    save_pretrained(model, tokenizer, out / "model", overwrite=cfg.overwrite)
    if (out / "checkpoint").exists():
        import shutil

        shutil.rmtree(out / "checkpoint")
    log.info("oscar %s: %s", cfg.task, {k: v for k, v in results.items() if k != "samples"})
    return out


def _checkpoint(folder: Path, model, optimizer, schedule, step: int) -> None:
    import torch
    from safetensors.torch import save_model

    with atomic.folder(folder, overwrite=True) as tmp:
        save_model(model, str(tmp / "model.safetensors"))  # handles the tied MLM decoder
        # the torch RNG too: a resumed run draws the dropout masks an uninterrupted one would
        torch.save({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                    "torch_rng": torch.get_rng_state()}, tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step}))


def _restore(folder: Path, model, optimizer, schedule, metrics_log) -> int:
    import torch
    from safetensors.torch import load_model

    if not (folder / "state.json").is_file():
        return 0
    load_model(model, str(folder / "model.safetensors"))
    state = torch.load(folder / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    if "torch_rng" in state:  # checkpoints written before it was saved resume with a fresh stream
        torch.set_rng_state(state["torch_rng"])
    step = json.loads((folder / "state.json").read_text())["step"]
    metrics_log.truncate(step)
    log.info("resuming from %s at step %d", folder, step)
    return step
