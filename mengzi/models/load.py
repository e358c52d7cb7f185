"""`load` a Mengzi checkpoint (hub id, preset name or local folder) and `init_model` a fresh one from a preset.

Langboat's published checkpoints load unchanged, quirks included:

* mengzi-bert-base's config says `pad_token_id=1`, but `[PAD]` is id 0 in its vocab (id 1 is `[unused1]`).
  Padding follows the tokenizer; the config is corrected to the tokenizer's pad id (a warning says so), so the
  embedding's padding row and everything downstream that reads `config.pad_token_id` agree with the tokenizer.
* its weights are fp16 (`pytorch_model.bin`); they are loaded as float32 unless `dtype` says otherwise (fp16
  matmuls on CPU are slow and lossy; on GPU pass `dtype=torch.float16` or `torch.bfloat16`).
* folders carry only `vocab.txt` (BERT) or a bare SentencePiece file (T5 `spiece.model`, GPT-neo
  `mengzi_gpt.model`); `mengzi.tokenizer.load_tokenizer` reads all of them.

Nothing executes remote code unless `trust_remote_code=True` is passed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, PretrainedConfig

from .. import atomic
from ..tokenizer import load_tokenizer
from .heads import PretrainingHeads
from .oscar import MengziOscarModel, is_oscar_config, oscar_class
from .presets import Preset, get_preset, preset_for_hub_id

log = logging.getLogger(__name__)

# task name -> transformers Auto class; one line a task
TASKS = {
    "base": "AutoModel",
    "masked-lm": "AutoModelForMaskedLM",
    "pretraining": "AutoModelForPreTraining",  # BERT: MLM head + pooler + seq_relationship (SOP)
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq-lm": "AutoModelForSeq2SeqLM",
    "sequence-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "multiple-choice": "AutoModelForMultipleChoice",
}
# what `init` builds and `load` returns when no task is named: the pre-training model of each family
DEFAULT_TASK = {"bert": "masked-lm", "t5": "seq2seq-lm", "gpt-neo": "causal-lm", "oscar": "base"}
CONFIG_CLASS = {"bert": "BertConfig", "oscar": "BertConfig", "t5": "T5Config", "gpt-neo": "GPTNeoConfig"}


def family_of(config: PretrainedConfig) -> str:
    if is_oscar_config(config):
        return "oscar"
    return {"bert": "bert", "t5": "t5", "gpt_neo": "gpt-neo"}.get(config.model_type, config.model_type)


def model_class(family: str, task: str):
    if family == "oscar":
        return oscar_class(task)  # base | captioning | retrieval (mengzi.models.oscar.OSCAR_TASKS)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {sorted(TASKS)}")
    return getattr(transformers, TASKS[task])


def _round_up(n: int, multiple: int = 64) -> int:
    return (n + multiple - 1) // multiple * multiple


def build_config(preset: Preset, tokenizer) -> PretrainedConfig:
    """The preset's transformers config, with vocab size and special ids taken from the tokenizer."""
    kwargs = dict(preset.config)
    n = len(tokenizer)
    if kwargs.get("vocab_size") is None:
        kwargs["vocab_size"] = _round_up(n)  # multiple of 64: T5's 32100 tokens -> 32128 rows, as Mengzi-T5
    elif n > kwargs["vocab_size"]:
        raise ValueError(f"preset {preset.name}: tokenizer has {n} tokens but the model has {kwargs['vocab_size']} "
                         "embedding rows; use a smaller tokenizer or a preset without a fixed vocab_size")
    if preset.family in ("bert", "oscar"):
        kwargs["pad_token_id"] = tokenizer.pad_token_id
    elif preset.family == "t5":
        kwargs.update(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)
    elif preset.family == "gpt-neo":
        eos = tokenizer.eos_token_id
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
        kwargs.update(bos_token_id=bos, eos_token_id=eos,
                      pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos)
    config = getattr(transformers, CONFIG_CLASS[preset.family])(**kwargs)
    config.mengzi_preset = preset.name
    return config


def init_model(preset_name: str, tokenizer=None, task: str | None = None, seed: int = 0, data=None,
               overrides: dict | None = None):
    """A randomly initialised model of `preset_name` and its tokenizer (the preset's default if none given);
    `overrides` changes config fields of the preset (e.g. `{"num_hidden_layers": 6}`)."""
    from ..data import resolve

    preset = get_preset(preset_name)
    if tokenizer is None or isinstance(tokenizer, str | os.PathLike):
        spec = str(tokenizer) if tokenizer is not None else preset.tokenizer
        tokenizer = load_tokenizer(resolve(spec, data), kind=_sp_kind(preset.family))
    config = build_config(preset, tokenizer)
    for key, value in (overrides or {}).items():
        if not hasattr(config, key):
            raise ValueError(f"preset {preset.name}: {type(config).__name__} has no field {key!r} to override")
        setattr(config, key, value)
    torch.manual_seed(seed)
    cls = model_class(preset.family, task or DEFAULT_TASK[preset.family])
    model = cls(config) if cls is MengziOscarModel else cls.from_config(config)
    if preset.family == "t5" and preset.config.get("tie_word_embeddings") is False and hasattr(model, "lm_head"):
        _untie_lm_head(model)
    return model, tokenizer


def _untie_lm_head(model) -> None:
    """T5 v1.1 (Mengzi-T5) has its own LM head. transformers 5 forces `T5Config.tie_word_embeddings=True` and ties
    a fresh model's head to the input embedding (checkpoints with a distinct head still load untied), so give the
    head its own weight, initialised as T5 does for an untied head (normal, std = initializer_factor)."""
    weight = torch.empty_like(model.shared.weight).normal_(0.0, model.config.initializer_factor)
    model.lm_head.weight = torch.nn.Parameter(weight)
    model.config.tie_word_embeddings = False


def _sp_kind(family: str) -> str | None:
    return {"t5": "t5", "gpt-neo": "gpt"}.get(family)


def save_pretrained(model, tokenizer, out_dir: str | os.PathLike, heads: PretrainingHeads | None = None,
                    overwrite: bool = False) -> Path:
    """Model (safetensors), tokenizer (+ vocab.txt for WordPiece) and extra heads, written atomically."""
    from ..tokenizer.wordpiece import save_wordpiece

    with atomic.folder(out_dir, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if isinstance(tokenizer, transformers.BertTokenizer):
            save_wordpiece(tokenizer, tmp)
        else:
            tokenizer.save_pretrained(tmp)
        if heads is not None:
            heads.save(tmp)
    return Path(out_dir)


def model_folder(name_or_path: str | os.PathLike, revision: str | None = None) -> Path:
    """A local folder for a path, a preset name or a hub id (downloaded into the HF cache when online)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists():
        raise FileNotFoundError(f"{name}: not a folder (a model is a folder holding config.json and weights)")
    try:
        hub_id = get_preset(name).hub_id or ""
    except KeyError:
        hub_id = name if _looks_like_hub_id(name) else ""
    if not hub_id:
        raise FileNotFoundError(f"{name}: no such folder, and not a hub id (OWNER/NAME) or a preset with a published "
                                "checkpoint (tiny presets have none: `mengzi init PRESET OUT` makes one)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(hub_id, revision=revision,
                                      allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors", "*.bin"]))
    except Exception as e:  # offline, missing repo, network: one clear message
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        raise FileNotFoundError(
            f"{name}: no such folder here, and the hub copy of {hub_id} could not be fetched "
            f"({'HF_HUB_OFFLINE is set' if offline else type(e).__name__ + ': ' + str(e).splitlines()[0][:200]}).\n"
            f"  a local folder? check the path. A hub model? download it once where the hub is reachable "
            f"(`hf download {hub_id} --local-dir DIR`) and pass DIR") from e


def _looks_like_hub_id(name: str) -> bool:
    """OWNER/NAME with hub-legal characters, neither part a path component such as `.` or `..`, and OWNER not
    a folder here (then `runs/model` is a path that does not exist, not a hub id)."""
    import re

    owner = name.split("/", 1)[0]
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", name)) and owner not in (".", "..") \
        and not Path(owner).is_dir()


def load(name_or_path: str | os.PathLike, task: str | None = None, dtype: torch.dtype | str = torch.float32,
         revision: str | None = None, trust_remote_code: bool = False, config_overrides: dict | None = None,
         **model_kwargs):
    """(model, tokenizer) for a hub id (`Langboat/mengzi-bert-base`), a preset name or a local folder.

    `task` picks the head (see `TASKS`; default: the family's pre-training model). `dtype="auto"` keeps the
    stored precision; the default float32 upcasts Langboat's fp16 weights. `config_overrides` sets config fields
    before the model is built, in order (e.g. `{"num_labels": 3, "id2label": {...}}` for a classification head).
    """
    folder = model_folder(name_or_path, revision)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    for key, value in (config_overrides or {}).items():
        setattr(config, key, value)
    family = family_of(config)
    tokenizer = load_tokenizer(folder, kind=_sp_kind(family))
    _reconcile_special_ids(config, tokenizer, family, folder)
    cls = model_class(family, task or DEFAULT_TASK.get(family, "base"))
    if cls is not MengziOscarModel:  # Auto classes are where remote code could be pulled in
        model_kwargs["trust_remote_code"] = trust_remote_code
    model = cls.from_pretrained(folder, config=config, dtype=dtype, **model_kwargs)
    model.eval()
    return model, tokenizer


def _reconcile_special_ids(config: PretrainedConfig, tokenizer, family: str, folder: Path) -> None:
    """Make config.pad_token_id agree with the tokenizer (Langboat's BERT configs say 1; [PAD] is 0)."""
    pad = tokenizer.pad_token_id
    if pad is None or family not in ("bert", "oscar"):
        return
    if config.pad_token_id != pad:
        log.warning("%s: config.json says pad_token_id=%s but the tokenizer's %s is id %s; padding follows the "
                    "tokenizer and the config is corrected", folder, config.pad_token_id, tokenizer.pad_token, pad)
        config.pad_token_id = pad


def load_heads(folder: str | os.PathLike) -> PretrainingHeads | None:
    """Extra pre-training heads saved beside a backbone (None if the folder has none)."""
    return PretrainingHeads.load(folder)


__all__ = ["load", "init_model", "save_pretrained", "load_heads", "build_config", "family_of", "TASKS",
           "DEFAULT_TASK", "preset_for_hub_id", "model_folder"]
