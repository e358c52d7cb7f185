"""Prompt-based CLUE classification: Chinese label words and templates per task, zero-shot and few-shot inference.

    mengzi clue prompt ocnli --model runs/pretrain/mengzi-bert-tiny/model --shots 0 --max-examples 300
    mengzi clue prompt tnews --recipe recipes/clue-prompts/tnews-t5-tiny.yaml

Every label of a task has a Chinese label word (`LABEL_WORDS`); every task has several one-line templates
(`TEMPLATES`) whose fields are the example's `{text}` and `{text_pair}` (CLUEWSC2020 also `{span1}`, the entity,
and `{span2}`, the pronoun; `{text}` without the markers) and one `{mask}`, where the label word goes. For each
template the predicted label is the one whose label word scores highest in the slot (`mengzi.clue.prompt_scoring`):
a BERT fills the slot with [MASK]s (PET's cloze), a T5 with its first sentinel and is scored on "<extra_id_0>word"
(the span-corruption target), a GPT-Neo reads the prompt up to the slot and is scored on the word and the rest of
the template.

Few-shot (`shots` = k > 0 examples of each class, drawn with `seed` from the training set): T5 and GPT-Neo read
them as in-context demonstrations (the template filled with the gold word, one a line, before the query); a BERT
is instead fine-tuned on them PET-style (cross-entropy over the label words' cloze scores, `pet_steps` steps), as
in-context learning does not apply to a 512-token masked LM.

The run folder (written whole, atomically) holds `config.yaml`, `metrics.json` (accuracy per template and how many distinct
labels it predicted, best and mean over templates, and the majority-class and uniform-random baselines on the same dev examples) and
`predictions.jsonl` (each dev example's id, gold label and the label each template predicts).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mengzi.config import ConfigError, option

# label -> label word, in any order (checked against the task registry by the tests). Words of one task have the
# same length where Chinese allows it, so a BERT slot of n [MASK]s is no easier to fill for one label than another.
NLI_WORDS = {"entailment": "是的", "neutral": "可能", "contradiction": "不是"}
IFLYTEK_WORDS = (  # the official labels.json descriptions, label "0" first
    "打车,地图导航,免费WIFI,租车,同城服务,快递物流,婚庆,家政,公共交通,政务,社区服务,薅羊毛,魔幻,仙侠,卡牌,飞行空战,射击游戏,"
    "休闲益智,动作类,体育竞技,棋牌中心,经营养成,策略,MOBA,辅助工具,约会社交,即时通讯,工作社交,论坛圈子,婚恋社交,情侣社交,社交工具,"
    "生活社交,微博博客,新闻,漫画,小说,技术,教辅,问答交流,搞笑,杂志,百科,影视娱乐,求职,兼职,视频,短视频,音乐,直播,电台,K歌,成人,"
    "中小学,职考,公务员,英语,视频教育,高等教育,成人教育,艺术,语言(非英语),旅游资讯,综合预定,民航,铁路,酒店,行程管理,民宿短租,出国,"
    "工具,亲子儿童,母婴,驾校,违章,汽车咨询,汽车交易,日常养车,行车辅助,租房,买房,装修家居,电子产品,问诊挂号,养生保健,医疗服务,"
    "减肥瘦身,美妆美业,菜谱,餐饮店,体育咨讯,运动健身,支付,保险,股票,借贷,理财,彩票,记账,银行,美颜,影像剪辑,摄影修图,相机,绘画,"
    "二手,电商,团购,外卖,电影票务,社区超市,购物咨询,笔记,办公,日程管理,女性,经营,收款,其他").split(",")
LABEL_WORDS: dict[str, dict[str, str]] = {
    "afqmc": {"0": "不同", "1": "相同"},
    "tnews": {"100": "故事", "101": "文化", "102": "娱乐", "103": "体育", "104": "财经", "106": "房产", "107": "汽车",
              "108": "教育", "109": "科技", "110": "军事", "112": "旅游", "113": "国际", "114": "股票", "115": "农业",
              "116": "游戏"},
    "iflytek": {str(i): word for i, word in enumerate(IFLYTEK_WORDS)},
    "ocnli": NLI_WORDS,
    "cmnli": NLI_WORDS,
    "cluewsc2020": {"true": "是的", "false": "不是"},
    "csl": {"1": "是的", "0": "不是"},
}

# One template a line; fields as in the module doc. Index 0 is the default of text-to-text fine-tuning.
TEMPLATES: dict[str, list[str]] = {
    "afqmc": ["“{text}”和“{text_pair}”的意思{mask}。",
              "问题一：{text}问题二：{text_pair}两个问题{mask}。",
              "{text}，{text_pair}，这两句话意思{mask}。"],
    "tnews": ["这是一条{mask}新闻：{text}",
              "{text}。这条新闻属于{mask}类。",
              "新闻标题：{text}。类别：{mask}"],
    "iflytek": ["这是一款{mask}类应用：{text}",
                "{text}。这个应用属于{mask}类。",
                "应用描述：{text}。类别：{mask}"],
    "ocnli": ["“{text}”？{mask}，“{text_pair}”",
              "{text}。问：{text_pair}吗？答：{mask}。",
              "前提：{text}。假设：{text_pair}。假设成立吗？{mask}。"],
    "cluewsc2020": ["{text}问：“{span2}”指的是“{span1}”吗？答：{mask}。",
                    "{text}这里，“{span2}”指代“{span1}”吗？{mask}。",
                    "“{span2}”指代“{span1}”吗？{mask}。{text}"],
    "csl": ["摘要：{text_pair}关键词：{text}。这些是这篇摘要的关键词吗？{mask}。",
            "{text_pair}问：“{text}”是这篇文章的关键词吗？答：{mask}。",
            "关键词：{text}。问：它们概括了下面的摘要吗？{mask}。摘要：{text_pair}"],
}
TEMPLATES["cmnli"] = TEMPLATES["ocnli"]

MASK = "{mask}"
FIELD = re.compile(r"\{(text|text_pair|span1|span2|mask)\}")
WSC_ENTITY, WSC_PRONOUN = re.compile(r"\[(.+?)\]"), re.compile(r"<(.+?)>")  # the markers of mengzi.clue's WSC text


def label_words(task) -> list[str]:
    """The label words of `task` in the order of its labels (`mengzi.clue.tasks`)."""
    from .tasks import get_task

    task = get_task(task)
    if task.name not in LABEL_WORDS:
        raise KeyError(f"{task.name} is not a classification task with label words; known: {', '.join(LABEL_WORDS)}")
    return [LABEL_WORDS[task.name][label] for label in task.labels]


def check_template(template: str) -> str:
    if template.count(MASK) != 1:
        raise ConfigError(f"template {template!r} must hold {MASK} exactly once (where the label word goes)")
    unknown = set(re.findall(r"\{(\w+)\}", template)) - {"text", "text_pair", "span1", "span2", "mask"}
    if unknown:
        raise ConfigError(f"template {template!r}: unknown field(s) {sorted(unknown)}; "
                          "known: text, text_pair, span1, span2, mask")
    return template


def resolve_templates(task: str, chosen: list[str]) -> list[str]:
    """`chosen` entries are indices into TEMPLATES[task] ("0", "2") or template texts; none: all of the task's."""
    registry = TEMPLATES[task]
    if not chosen:
        return list(registry)
    out = []
    for entry in chosen:
        if str(entry).isdigit():
            if int(entry) >= len(registry):
                raise ConfigError(f"templates: {task} has {len(registry)} templates (0..{len(registry) - 1}), "
                                  f"not {entry}")
            out.append(registry[int(entry)])
        else:
            out.append(check_template(str(entry)))
    return out


def example_fields(task: str, example: dict) -> dict[str, str]:
    """The template fields of one example in the shared schema."""
    fields = {"text": example["text"], "text_pair": example.get("text_pair", "")}
    if task == "cluewsc2020":
        text = example["text"]
        entity, pronoun = WSC_ENTITY.search(text), WSC_PRONOUN.search(text)
        if not entity or not pronoun:
            raise ValueError(f"cluewsc2020 example {example.get('id')}: text lacks the [entity] / <pronoun> markers")
        fields.update(span1=entity.group(1), span2=pronoun.group(1))
        fields["text"] = WSC_PRONOUN.sub(r"\1", WSC_ENTITY.sub(r"\1", text, count=1), count=1)
    return fields


def fill(template: str, fields: dict[str, str], mask: str) -> str:
    """The template with its fields and `mask` in the slot (a replacement, not str.format: texts may hold braces)."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name == "mask":
            return mask
        if name not in fields:
            raise ConfigError(f"template {template!r} uses {{{name}}}, which this task's examples lack")
        return fields[name]

    return FIELD.sub(value, template)


def split_at_mask(template: str, fields: dict[str, str]) -> tuple[str, str]:
    """(text before the slot, text after it), both filled: a causal LM reads the first and is scored on
    label word + the second."""
    head, tail = template.split(MASK)
    return fill(head, fields, ""), fill(tail, fields, "")


# ------------------------------------------------------------------------------------------------- the command
@dataclass
class PromptConfig:
    model: str = option("", "masked LM (BERT), T5 or GPT-Neo: a checkpoint folder, preset with a checkpoint or hub id")
    task: str = option("", "CLUE classification task: afqmc, tnews, iflytek, ocnli, cmnli, cluewsc2020, csl")
    templates: list[str] = option([], "template indices into the task's registry (0, 1, ...) or template texts "
                                      "with {mask}; none: every template of the task")
    shots: int = option(0, "examples per class from the training set (0: zero-shot); T5/GPT-Neo: in-context "
                           "demonstrations, BERT: PET fine-tuning on them")
    max_examples: int = option(300, "dev examples scored (the first N; 0: all)")
    seed: int = option(0, "seed of the few-shot draw and of PET's training")
    normalize: Literal["sum", "mean"] = option("sum", "label word score: sum of its token log-probs, or their mean")
    batch_size: int = option(16, "texts per forward pass")
    max_length: int = option(512, "tokens per prompt (over-long prompts lose their start: demonstrations first)")
    pet_steps: int = option(30, "BERT few-shot: optimizer steps of PET fine-tuning on the shots")
    pet_lr: float = option(1e-4, "BERT few-shot: PET learning rate (AdamW)")
    data_dir: str = option("data:clue", "CLUE root folder holding <task>/ with the official files")
    files: dict = option({}, "per-split file overrides, e.g. {dev: path/to/dev.json}")
    data: str = option("", "data folder for data:REL paths (default $DATA or ../shared/data)")
    threads: int = option(0, "torch threads (0: torch's default)")
    out: str = option("", "run folder (default runs/clue-prompts/<task>-<k>shot)")
    overwrite: bool = option(False, "replace an existing run folder")


def data_root(cfg) -> Path:
    """The CLUE root folder of a config with `data_dir` (a path or data:REL) and `data`."""
    from mengzi.data import resolve

    return resolve(cfg.data_dir, cfg.data or None)


def load_examples(cfg, task, split: str, limit: int = 0) -> list[dict]:
    from mengzi.data import resolve

    from .tasks import load_task

    files = {k: str(resolve(v, cfg.data or None)) for k, v in cfg.files.items()}
    return load_task(task.name, split, data_root(cfg), files, limit=limit).to_list()


def draw_shots(train: list[dict], n_labels: int, shots: int, seed: int) -> list[dict]:
    """`shots` examples of each label (fewer where the training set has fewer), shuffled together."""
    import random

    rng = random.Random(seed)
    by_label: dict[int, list[dict]] = {i: [] for i in range(n_labels)}
    for example in train:
        if example["label"] >= 0:
            by_label[example["label"]].append(example)
    picked = [e for label in sorted(by_label) for e in rng.sample(by_label[label], min(shots, len(by_label[label])))]
    rng.shuffle(picked)
    return picked


def baselines(labels: list[int], n_labels: int) -> dict[str, float]:
    """Majority class (the dev subset's most frequent label, an optimistic constant) and uniform random (expected)."""
    from collections import Counter

    majority = Counter(labels).most_common(1)[0][1] if labels else 0
    return {"majority_class": round(100.0 * majority / max(len(labels), 1), 2),
            "uniform_random": round(100.0 / n_labels, 2)}


def clue_prompt(cfg: PromptConfig) -> Path:
    """Score every template on the dev subset; write the run folder (see the module doc) and return it."""
    from mengzi import atomic
    from mengzi.config import dump_yaml
    from mengzi.finetune.metrics import accuracy

    from . import prompt_scoring
    from .tasks import get_task

    if not cfg.task or not cfg.model:
        raise ConfigError("name the task and the model: mengzi clue prompt TASK --model MODEL")
    task = get_task(cfg.task)
    if task.name not in LABEL_WORDS:
        raise ConfigError(f"{task.name} is not a classification task; prompts cover {', '.join(LABEL_WORDS)}")
    templates = resolve_templates(task.name, cfg.templates)
    out = Path(cfg.out or f"runs/clue-prompts/{task.name}-{cfg.shots}shot")
    if out.exists() and not cfg.overwrite:
        raise FileExistsError(f"{out} exists; choose another --out or pass --overwrite")
    dev = [e for e in load_examples(cfg, task, "dev", cfg.max_examples) if e["label"] >= 0]
    shots = draw_shots(load_examples(cfg, task, "train"), len(task.labels), cfg.shots, cfg.seed) if cfg.shots else []
    gold = [e["label"] for e in dev]
    scorer = prompt_scoring.PromptScorer.load(cfg, task.name)
    per_template, predictions = [], {}
    for index, template in enumerate(templates):
        predicted = scorer.predict(template, dev, shots)
        predictions[index] = predicted
        per_template.append({"template": template, "accuracy": round(accuracy(predicted, gold), 2),
                             "labels_predicted": len(set(predicted))})  # 1: a constant answer (majority at best)
        print(f"{task.name} template {index} ({cfg.shots}-shot): accuracy {per_template[-1]['accuracy']:.2f}  "
              f"{template}")
    scores = [t["accuracy"] for t in per_template]
    metrics = {"task": task.name, "model": cfg.model, "family": scorer.family, "shots": cfg.shots,
               "examples": len(dev), "templates": per_template, "best": max(scores),
               "mean": round(sum(scores) / len(scores), 2), **baselines(gold, len(task.labels))}
    rows = [{"id": e["id"], "label": task.labels[e["label"]],
             "predictions": [task.labels[predictions[i][k]] for i in range(len(templates))]}
            for k, e in enumerate(dev)]
    with atomic.folder(out, overwrite=cfg.overwrite) as tmp:
        (tmp / "config.yaml").write_text(dump_yaml(cfg, header=f"mengzi clue prompt {task.name} --config this"),
                                         encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
        (tmp / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                               encoding="utf-8")
    print(f"{task.name} {cfg.shots}-shot over {len(templates)} templates: best {metrics['best']:.2f}, mean "
          f"{metrics['mean']:.2f} (majority class {metrics['majority_class']:.2f}, uniform random "
          f"{metrics['uniform_random']:.2f}) -> {out}")
    return out
