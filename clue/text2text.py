"""CLUE classification as text-to-text (the Mengzi-T5-MT recipe): the source is a Chinese template filled with the
example, the target is the label's Chinese word (`mengzi.clue.prompts`); a T5 is fine-tuned to generate it with
`mengzi.textgen.train.train_textgen`. (GPT-Neo is not offered here: a causal LM reads only the text before the
slot, which for most templates holds none of the example; `mengzi clue prompt` scores GPT-Neo zero/few-shot.)

    mengzi clue text2text tnews --recipe recipes/clue-text2text/tnews-tiny.yaml

Sources: T5 reads the template with its first sentinel <extra_id_0> in the slot, cut to `train.max_source_len`
tokens the same way in training, scoring and test prediction. Turning outputs into labels (`decode`):
- "score" (default): constrained decoding. Every label word is scored as the target
  (`mengzi.textgen.scoring.score_continuations`, sum of token log-probs + EOS, the word exactly as it was trained
  on) and the best one is the prediction, so every prediction is a label, whatever the model would have
  generated.
- "generate": free greedy/beam generation (`generation` options), mapped back to a label: the label whose word
  equals the generated text (spaces ignored); otherwise the label whose word shares the most characters with it
  (Jaccard over character sets), ties going to the label most frequent in the training set.
Both accuracies are always reported (`metrics.json`: dev.accuracy is the chosen decode's; `dev.exact_words` is the
share of generations that are a label word verbatim), with the majority-class baseline on the same dev examples.

Run folder: `config.yaml` (this config), `train/` (the train_textgen run: its config, logs, checkpoints for
`resume`, `model/`), `metrics.json`, `dev_predictions.jsonl` and `predictions/` (every test file of the task in
the data folder, in the official format and file name of `mengzi.clue.submission`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mengzi.config import ConfigError, option
from mengzi.textgen.config import GenerationOptions, TextGenTrainConfig

from .prompts import LABEL_WORDS, example_fields, fill, label_words, resolve_templates

log = logging.getLogger("mengzi.clue")
SENTINEL = "<extra_id_0>"


@dataclass
class Text2TextConfig:
    task: str = option("", "CLUE classification task: afqmc, tnews, iflytek, ocnli, cmnli, cluewsc2020, csl")
    model: str = option("mengzi-t5-tiny", "T5 or GPT-Neo to fine-tune: a checkpoint folder, preset with a checkpoint "
                        "or hub id; with from_scratch, the preset to initialise")
    from_scratch: bool = option(False, "initialise `model` (a preset) randomly instead of loading weights")
    overrides: dict = option({}, "from_scratch: preset config fields to change, e.g. {d_model: 64}")
    template: str = option("0", "the source template: an index into the task's TEMPLATES or a template text")
    decode: Literal["score", "generate"] = option("score", "score: the best-scoring label word (constrained); "
                                                  "generate: free generation mapped to the nearest label word")
    train: TextGenTrainConfig = option(TextGenTrainConfig(max_target_len=16, eval_batch_size=16),
                                       "the optimisation (train.max_eval_examples caps the dev examples)")
    generation: GenerationOptions = option(GenerationOptions(max_new_tokens=12), "decoding of the generate path")
    predict_test: bool = option(True, "predict every test file of the task found in the data folder")
    max_test_examples: int = option(0, "predict only the first N of each test file (0: all; a cut file is not "
                                       "a valid submission)")
    data_dir: str = option("data:clue", "CLUE root folder holding <task>/ with the official files")
    files: dict = option({}, "per-split file overrides, e.g. {train: path/to/train.json}")
    data: str = option("", "data folder for data:REL paths (default $DATA or ../shared/data)")
    out: str = option("", "run folder (default runs/clue-text2text/<task>)")
    resume: bool = option(False, "continue the training from the run folder's last checkpoint")
    overwrite: bool = option(False, "start afresh in a run folder that already has results")


def source_text(task: str, template: str, example: dict) -> str:
    return fill(template, example_fields(task, example), SENTINEL)


def pairs(task: str, template: str, examples: list[dict]):
    """A `datasets.Dataset` of {id, source, target} (train_textgen's pair schema)."""
    from datasets import Dataset

    words = label_words(task)
    return Dataset.from_dict({"id": [str(e["id"]) for e in examples],
                              "source": [source_text(task, template, e) for e in examples],
                              "target": [words[e["label"]] if e["label"] >= 0 else "" for e in examples]})


def nearest_label(text: str, words: list[str], preference: list[int]) -> int:
    """The label whose word is `text` (spaces ignored), else the one sharing the most characters (Jaccard over
    character sets); ties go to the earliest label in `preference` (training frequency order)."""
    cleaned = "".join(text.replace("▁", " ").split())
    for j, word in enumerate(words):
        if cleaned == word:
            return j
    chars = set(cleaned)
    rank = {label: r for r, label in enumerate(preference)}

    def key(j: int):
        w = set(words[j])
        return (-len(chars & w) / max(len(chars | w), 1), rank.get(j, len(rank)))

    return min(range(len(words)), key=key)


def _family(model: str, from_scratch: bool) -> str:
    from mengzi.models.presets import get_preset
    from mengzi.textgen.generate import checkpoint_family

    return get_preset(model).family if from_scratch else checkpoint_family(model)[1]


def clue_text2text(cfg: Text2TextConfig) -> Path:
    """Fine-tune, then predict dev (both decodes) and the test files; returns the run folder."""
    from mengzi import atomic
    from mengzi.config import save_yaml
    from mengzi.finetune.metrics import accuracy
    from mengzi.models.load import load
    from mengzi.textgen.config import TextGenConfig
    from mengzi.textgen.data import write_jsonl
    from mengzi.textgen.scoring import score_continuations
    from mengzi.textgen.train import train_textgen

    from .prompts import load_examples
    from .tasks import get_task

    if not cfg.task:
        raise ConfigError("name the task: mengzi clue text2text TASK")
    task = get_task(cfg.task)
    if task.name not in LABEL_WORDS:
        raise ConfigError(f"{task.name} is not a classification task; text-to-text covers {', '.join(LABEL_WORDS)}")
    family = _family(cfg.model, cfg.from_scratch)
    if family != "t5":
        raise ConfigError(f"model: {cfg.model} is a {family} model; text-to-text takes a T5 (for GPT-Neo, score "
                          f"label words with `mengzi clue prompt {task.name}`)")
    template = resolve_templates(task.name, [cfg.template])[0]
    out = Path(cfg.out or f"runs/clue-text2text/{task.name}")
    t = cfg.train
    train = [e for e in load_examples(cfg, task, "train", t.max_train_examples) if e["label"] >= 0]
    dev = [e for e in load_examples(cfg, task, "dev", t.max_eval_examples) if e["label"] >= 0]
    if (out / "metrics.json").is_file() and not (cfg.resume or cfg.overwrite):
        raise FileExistsError(f"{out} already holds a run; pass --resume or --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, out / "config.yaml", header=f"resolved config (mengzi clue text2text {task.name} --config this)")
    textgen = TextGenConfig(model=cfg.model, from_scratch=cfg.from_scratch, overrides=cfg.overrides, task="pairs", out=str(out / "train"),
                            train=t, generation=cfg.generation, resume=cfg.resume, overwrite=cfg.overwrite,
                            data=cfg.data)
    result = train_textgen(textgen, splits={"train": pairs(task.name, template, train),
                                            "dev": pairs(task.name, template, dev)})

    model, tokenizer = load(out / "train" / "model", task="seq2seq-lm")
    words = label_words(task)
    preference = [label for label, _ in Counter(e["label"] for e in train).most_common()]

    def constrained(examples: list[dict]) -> list[int]:
        sources = [source_text(task.name, template, e) for e in examples]
        scores = score_continuations(model, tokenizer, sources, [words] * len(sources), t.eval_batch_size,
                                     max_length=t.max_source_len, keep_start=True)
        return [max(range(len(words)), key=row.__getitem__) for row in scores]

    generated = {row["id"]: row["prediction"] for row in result.predictions}
    gold = [e["label"] for e in dev]
    by_score = constrained(dev)
    texts = [generated.get(str(e["id"]), "") for e in dev]
    by_generation = [nearest_label(text, words, preference) for text in texts]
    chosen = by_score if cfg.decode == "score" else by_generation
    majority = Counter(gold).most_common(1)[0][1] if gold else 0
    dev_metrics = {"accuracy": round(accuracy(chosen, gold), 2),
                   "accuracy_constrained": round(accuracy(by_score, gold), 2),
                   "accuracy_generated": round(accuracy(by_generation, gold), 2),
                   "exact_words": round(100.0 * sum("".join(x.split()) in words for x in texts) / max(len(texts), 1), 2),
                   "majority_class": round(100.0 * majority / max(len(gold), 1), 2), "examples": len(dev)}
    write_jsonl(out / "dev_predictions.jsonl", [
        {"id": e["id"], "label": task.labels[e["label"]], "generated": x, "predicted_generated": task.labels[g],
         "predicted_constrained": task.labels[s]} for e, x, g, s in zip(dev, texts, by_generation, by_score)])
    written = _predict_tests(cfg, task, template, constrained, model, tokenizer, words, preference, out) \
        if cfg.predict_test else []
    metrics = {"task": task.name, "model": cfg.model, "template": template, "decode": cfg.decode,
               "train_examples": len(train), "textgen": result.metrics, "dev": dev_metrics, "predictions": written}
    atomic.write_text(out / "metrics.json", json.dumps(metrics, ensure_ascii=False, indent=1))
    print(f"{task.name} text-to-text dev accuracy {dev_metrics['accuracy']:.2f} ({cfg.decode}; constrained "
          f"{dev_metrics['accuracy_constrained']:.2f}, generated {dev_metrics['accuracy_generated']:.2f}, majority "
          f"class {dev_metrics['majority_class']:.2f}) -> {out}")
    return out


def _predict_tests(cfg, task, template, constrained, model, tokenizer, words, preference, out) -> list[str]:
    from mengzi.data import resolve
    from mengzi.textgen.generate import generate

    from .prompts import data_root, load_examples
    from .submission import predict_name_for, write_predictions
    from .tasks import task_file, to_dataset

    written = []
    for name in task.test_files:
        if name in cfg.files:  # resolved as load_examples resolves it
            path = resolve(cfg.files[name], cfg.data or None)
        else:
            path = task_file(task.name, data_root(cfg), name)
        if path is None or not path.is_file():
            continue
        examples = load_examples(cfg, task, name, cfg.max_test_examples)
        if cfg.decode == "score":
            predicted = constrained(examples)
        else:
            sources = [source_text(task.name, template, e) for e in examples]
            texts = generate(model, tokenizer, sources, cfg.generation, batch_size=cfg.train.eval_batch_size,
                             max_source_len=cfg.train.max_source_len)
            predicted = [nearest_label(x, words, preference) for x in texts]
        dataset = to_dataset(task, examples)
        target = write_predictions(task.name, dataset, predicted, out / "predictions",
                                   predict_name_for(task.name, path, dataset))
        written.append(target.name)
    if not written:
        log.warning("%s: no test file in the data folder: no test predictions", task.name)
    return written
