"""Oscar-style image-text encoder: the BERT text side plus projected region features (Mengzi-Oscar).

Region features (2048-dim Faster R-CNN features + 6 box coordinates = 2054) pass through a linear projection,
a LayerNorm and dropout, and are appended after the text tokens; one BERT encoder attends over both. Module
names follow Oscar's `BertImgModel` (`img_embedding`, `LayerNorm`, `dropout`) so Oscar checkpoints load, and the
text side keeps BertModel's names, so plain `BertModel.from_pretrained` reads the text encoder of a saved Oscar
model (ignoring the image projection).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutputWithPooling


def is_oscar_config(config) -> bool:
    return getattr(config, "img_feature_dim", None) is not None


class MengziOscarModel(BertModel):
    """`forward(input_ids, attention_mask, token_type_ids, img_feats=None, img_mask=None)`.

    `img_feats`: (batch, regions, img_feature_dim) floats; `img_mask`: (batch, regions), 1 for real regions
    (all ones when omitted). Without `img_feats` the model is exactly the BERT text encoder.
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
                inputs_embeds: torch.Tensor | None = None, **kwargs) -> BaseModelOutputWithPooling:
        hidden = self.embeddings(input_ids=input_ids, position_ids=position_ids, token_type_ids=token_type_ids,
                                 inputs_embeds=inputs_embeds)
        batch, text_len = hidden.shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(batch, text_len, dtype=torch.long, device=hidden.device)
        if img_feats is not None:
            regions = self.embed_regions(img_feats.to(hidden.dtype))
            if img_mask is None:
                img_mask = torch.ones(regions.shape[:2], dtype=attention_mask.dtype, device=hidden.device)
            hidden = torch.cat([hidden, regions], dim=1)
            attention_mask = torch.cat([attention_mask, img_mask.to(attention_mask.dtype)], dim=1)
        # The public mask builder, not BertModel's private helper: its signature changed in transformers 5.24.
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask)
        sequence = self.encoder(hidden, attention_mask=mask, **kwargs).last_hidden_state
        pooled = self.pooler(sequence) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=sequence, pooler_output=pooled)
