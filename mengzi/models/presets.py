"""Every Mengzi variant as a preset: its published architecture, default tokenizer and Langboat hub id.

One line registers a preset. Configs are the stock transformers ones (BERT, T5, GPT-Neo), so checkpoints move
freely between mengzi and plain transformers. `-tiny` presets keep each family's shape at a size that trains on
2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FAMILIES = ("bert", "t5", "gpt-neo", "oscar")

# tokenizer specs: "data:REL" is a file under the data folder (see mengzi.data); a plain path is used as given
CHINESE_VOCAB = "data:vocab/google_zh_vocab.txt"  # the 21128-entry Chinese BERT WordPiece vocab
CHINESE_SPIECE = "data:vocab/chinese_xlnet_spiece.model"  # 32000 unigram pieces: +100 sentinels = 32100 <= 32128


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    config: dict[str, Any]
    tokenizer: str
    hub_id: str | None = None
    description: str = ""

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"preset {self.name}: unknown family {self.family!r}")


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    if preset.name in PRESETS:
        raise ValueError(f"preset {preset.name} registered twice")
    PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    key = name.removeprefix("Langboat/")
    if key not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[key]


def preset_for_hub_id(hub_id: str) -> Preset | None:
    return next((p for p in PRESETS.values() if p.hub_id and p.hub_id.lower() == hub_id.lower()), None)


BERT_BASE = dict(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, layer_norm_eps=1e-12, pad_token_id=0)
BERT_TINY = BERT_BASE | dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512)
# T5 v1.1 as Langboat published it for mengzi-t5-base: gated-GELU FFN, untied LM head, no dropout in FFN gate
T5_BASE = dict(vocab_size=32128, d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_decoder_layers=12, num_heads=12,
               relative_attention_num_buckets=32, dropout_rate=0.1, layer_norm_epsilon=1e-6,
               feed_forward_proj="gated-gelu", tie_word_embeddings=False, initializer_factor=1.0)
T5_TINY = T5_BASE | dict(vocab_size=None, d_model=128, d_kv=32, d_ff=256, num_layers=2, num_decoder_layers=2,
                         num_heads=4)
# GPT-Neo 125M (EleutherAI's layout: alternating global/local attention, window 256); vocab follows the tokenizer
GPT_NEO_BASE = dict(vocab_size=None, hidden_size=768, num_layers=12, num_heads=12,
                    attention_types=[[["global", "local"], 6]], window_size=256, max_position_embeddings=2048,
                    intermediate_size=None, activation_function="gelu_new", embed_dropout=0.0,
                    attention_dropout=0.0, resid_dropout=0.0, layer_norm_epsilon=1e-5)
GPT_NEO_TINY = GPT_NEO_BASE | dict(hidden_size=128, num_layers=2, num_heads=4, attention_types=[[["global", "local"], 1]],
                                   window_size=64, max_position_embeddings=512)
# Oscar: BERT text side + a linear projection of 2054-dim region features (2048 Faster R-CNN + 6 box coordinates)
OSCAR = dict(img_feature_dim=2054, img_feature_type="faster_r-cnn", use_img_layernorm=True, img_layer_norm_eps=1e-12)

register_preset(Preset("mengzi-bert-base", "bert", BERT_BASE, CHINESE_VOCAB, "Langboat/mengzi-bert-base",
                       "BERT-base, 12 layers / 768 hidden, MLM + POS + SOP pre-training"))
register_preset(Preset("mengzi-bert-base-fin", "bert", BERT_BASE, CHINESE_VOCAB, "Langboat/mengzi-bert-base-fin",
                       "mengzi-bert-base continued on financial text"))
register_preset(Preset("mengzi-bert-L6-H768", "bert", BERT_BASE | dict(num_hidden_layers=6), CHINESE_VOCAB,
                       "Langboat/mengzi-bert-L6-H768", "6-layer BERT distilled from mengzi-bert-base"))
register_preset(Preset("mengzi-t5-base", "t5", T5_BASE, CHINESE_SPIECE, "Langboat/mengzi-t5-base",
                       "T5 v1.1 base, 12+12 layers, vocab 32128"))
register_preset(Preset("mengzi-gpt-neo-base", "gpt-neo", GPT_NEO_BASE, CHINESE_SPIECE, "Langboat/mengzi-gpt-neo-base",
                       "GPT-Neo 125M, causal LM"))
register_preset(Preset("mengzi-oscar-base", "oscar", BERT_BASE | OSCAR, CHINESE_VOCAB, "Langboat/mengzi-oscar-base",
                       "Oscar: mengzi-bert-base text side + 2054-dim region features"))
register_preset(Preset("mengzi-bert-tiny", "bert", BERT_TINY, CHINESE_VOCAB, None,
                       "2-layer 128-hidden BERT for CPU tests and demos"))
register_preset(Preset("mengzi-t5-tiny", "t5", T5_TINY, CHINESE_SPIECE, None, "2+2-layer 128-d T5 v1.1"))
register_preset(Preset("mengzi-gpt-neo-tiny", "gpt-neo", GPT_NEO_TINY, CHINESE_SPIECE, None, "2-layer 128-d GPT-Neo"))
register_preset(Preset("mengzi-oscar-tiny", "oscar", BERT_TINY | OSCAR, CHINESE_VOCAB, None,
                       "mengzi-bert-tiny text side + region features"))
