"""Oscar-style image-text encoder: the BERT text side plus projected region features (Mengzi-Oscar).

Region features (2048-dim appearance + 6 box coordinates = 2054) pass through a linear projection, a LayerNorm
and dropout, and are appended after the text tokens; one BERT encoder attends over both. Module names follow
Oscar's `BertImgModel` (`img_embedding`, `LayerNorm`, `dropout`) and its heads (`bert` + `cls` for captioning,
`bert` + `classifier` for retrieval), so Oscar checkpoints load, and the text side keeps BertModel's names, so
plain `BertModel.from_pretrained` reads the text encoder of a saved Oscar model (ignoring the image projection).

Sequence layout: `[CLS] caption [SEP] (pad) | tags [SEP] (pad) | regions`. Given `caption_len` (the length of
the first segment, padding included), the attention mask is Oscar's captioning mask: caption tokens attend
causally among themselves and to every tag and region; tags and regions attend to tags and regions only.
Without `caption_len` every token sees every other (retrieval, pre-training).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.models.bert.modeling_bert import BertOnlyMLMHead


def is_oscar_config(config) -> bool:
    return getattr(config, "img_feature_dim", None) is not None


def oscar_attention_mask(text_mask: torch.Tensor, caption_len: int | torch.Tensor, img_mask: torch.Tensor | None,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Oscar's captioning mask as a 4D additive float mask (batch, 1, q, k): 0 where attention is allowed, the
    dtype's minimum where it is not. Eager attention adds it to the scores and SDPA accepts the same float mask,
    so both implementations see one mask (no private transformers helper is involved).

    `text_mask` (batch, text_len) and `img_mask` (batch, regions) are 1 for real tokens; `caption_len` (int or
    (batch,)) counts the leading text positions that form the caption segment ([CLS] caption [SEP] + padding).
    """
    batch, text_len = text_mask.shape
    keys = torch.cat([text_mask, img_mask.to(text_mask.dtype)], dim=1) if img_mask is not None else text_mask
    total = keys.shape[1]
    device = text_mask.device
    cap = torch.as_tensor(caption_len, device=device).reshape(-1, 1, 1).expand(batch, 1, 1)
    if (cap < 0).any() or (cap > text_len).any():
        raise ValueError(f"caption_len must lie in [0, {text_len}] (the text length), got {caption_len}")
    pos = torch.arange(total, device=device)
    q, k = pos.view(1, -1, 1), pos.view(1, 1, -1)
    q_caption, k_caption = q < cap, k < cap  # (batch, q, 1), (batch, 1, k)
    allowed = torch.where(q_caption, ~k_caption | (k <= q), ~k_caption)  # caption: causal + all context
    allowed = allowed & keys.bool().view(batch, 1, total)  # padded keys are never seen
    zero = torch.zeros((), dtype=dtype, device=device)
    return torch.where(allowed, zero, torch.finfo(dtype).min).unsqueeze(1)


class MengziOscarModel(BertModel):
    """`forward(input_ids, attention_mask, token_type_ids, img_feats=None, img_mask=None, caption_len=None)`.

    `img_feats`: (batch, regions, img_feature_dim) floats; `img_mask`: (batch, regions), 1 for real regions
    (all ones when omitted). Without `img_feats` and `caption_len` the model is exactly the BERT text encoder.
    `caption_len` switches on Oscar's captioning mask (see `oscar_attention_mask`).
    """

    config_class = BertConfig

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        if not is_oscar_config(config):
            raise ValueError("an Oscar config needs img_feature_dim (2054 for Faster R-CNN region features)")
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        self.img_embedding = nn.Linear(config.img_feature_dim, config.hidden_size, bias=True)
        self.use_img_layernorm = bool(getattr(config, "use_img_layernorm", True))
        if self.use_img_layernorm:
            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=getattr(config, "img_layer_norm_eps", 1e-12))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.post_init()

    def embed_regions(self, img_feats: torch.Tensor) -> torch.Tensor:
        x = self.img_embedding(img_feats)
        if self.use_img_layernorm:
            x = self.LayerNorm(x)
        return self.dropout(x)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                img_feats: torch.Tensor | None = None, img_mask: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, caption_len: int | torch.Tensor | None = None,
                **kwargs) -> BaseModelOutputWithPooling:
        hidden = self.embeddings(input_ids=input_ids, position_ids=position_ids, token_type_ids=token_type_ids,
                                 inputs_embeds=inputs_embeds)
        batch, text_len = hidden.shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(batch, text_len, dtype=torch.long, device=hidden.device)
        text_mask = attention_mask
        if img_feats is not None:
            if img_feats.shape[-1] != self.config.img_feature_dim:
                raise ValueError(f"img_feats has {img_feats.shape[-1]} dims per region; this model expects "
                                 f"{self.config.img_feature_dim} (2048 appearance + 6 box geometry)")
            regions = self.embed_regions(img_feats.to(hidden.dtype))
            if img_mask is None:
                img_mask = torch.ones(regions.shape[:2], dtype=attention_mask.dtype, device=hidden.device)
            hidden = torch.cat([hidden, regions], dim=1)
            attention_mask = torch.cat([attention_mask, img_mask.to(attention_mask.dtype)], dim=1)
        if caption_len is not None:
            if self.config._attn_implementation not in ("eager", "sdpa"):
                raise ValueError("Oscar's captioning mask is a dense 4D mask: use attn_implementation 'eager' or "
                                 f"'sdpa' (got {self.config._attn_implementation!r})")
            mask = oscar_attention_mask(text_mask, caption_len, img_mask if img_feats is not None else None,
                                        dtype=hidden.dtype)
        else:
            # The public mask builder, not BertModel's private helper: its signature changed in transformers 5.24.
            mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask)
        sequence = self.encoder(hidden, attention_mask=mask, **kwargs).last_hidden_state
        pooled = self.pooler(sequence) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=sequence, pooler_output=pooled)


class _OscarHead(BertPreTrainedModel):
    config_class = BertConfig

    @classmethod
    def from_config(cls, config: BertConfig):
        """A fresh head model (what `mengzi.models.init_model` calls, as it calls an Auto class's)."""
        return cls(config)


class MengziOscarForCaptioning(_OscarHead):
    """Oscar's captioner: the encoder under the captioning mask + BERT's MLM head over caption positions.

    Training masks caption tokens (see `mengzi.multimodal.oscar.inputs.mask_caption`) and predicts them
    (`labels`: -100 except at masked positions). Decoding (`mengzi.multimodal.oscar.decode`) puts [MASK] at the
    next caption position and fills it, one token at a time.
    """

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = MengziOscarModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, img_feats=None, img_mask=None,
                caption_len=None, labels=None, predict_positions=None, **kwargs) -> dict:
        """Logits at the labelled positions (training; with `loss`) or at `predict_positions` ((batch,) long:
        one position per row, for decoding); at every text position when neither is given."""
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           img_feats=img_feats, img_mask=img_mask, caption_len=caption_len,
                           **kwargs).last_hidden_state
        if labels is not None:
            where = labels != -100
            logits = self.cls(states[:, : labels.shape[1]][where])  # only masked tokens: the vocab is large
            loss = nn.functional.cross_entropy(logits.float(), labels[where]) if where.any() else logits.sum() * 0
            return {"loss": loss, "logits": logits}
        if predict_positions is not None:
            rows = torch.arange(states.shape[0], device=states.device)
            return {"logits": self.cls(states[rows, predict_positions])}
        return {"logits": self.cls(states[:, : input_ids.shape[1]])}


class MengziOscarForRetrieval(_OscarHead):
    """Oscar's image-text matching: a classifier on the pooled [CLS] (bidirectional attention).

    `config.num_labels` 2: label 1 = the caption matches the image (tags + regions), 0 = it does not; 3 (Oscar's
    pre-training contrastive head): 1 = match, 0 = caption replaced, 2 = tags polluted. `match_score` is the
    log-probability of "match", used to rank.
    """

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = MengziOscarModel(config, add_pooling_layer=True)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, img_feats=None, img_mask=None,
                labels=None, **kwargs) -> SequenceClassifierOutput:
        pooled = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           img_feats=img_feats, img_mask=img_mask, **kwargs).pooler_output
        logits = self.classifier(self.dropout(pooled))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    @staticmethod
    def match_score(logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits.float(), dim=-1)[:, 1]


# task name -> Oscar model class; one line a task (`mengzi.models.load` asks here for family "oscar")
OSCAR_TASKS = {"base": MengziOscarModel, "captioning": MengziOscarForCaptioning, "retrieval": MengziOscarForRetrieval}


def oscar_class(task: str):
    if task not in OSCAR_TASKS:
        raise ValueError(f"unknown Oscar task {task!r}; known: {sorted(OSCAR_TASKS)}")
    return OSCAR_TASKS[task]
