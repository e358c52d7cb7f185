"""Intra-chunk encoder: a Conv3d patch embedding inflated from SigLIP's 2D patch kernel, SigLIP's ViT, 2x2 pooling.

Inflation copies the 2D kernel over the F frames of a chunk and divides it by F, so at initialisation a chunk of
F identical frames embeds exactly as the 2D image does; training then lets the kernel weigh frames differently
(motion inside a chunk). The Conv3d takes the place of the patch conv inside SigLIP's embeddings module
(`ChunkPatchEmbeddings`), so the stock `SiglipVisionModel` runs unchanged on either a chunk ([B, F, 3, H, W]) or
an image ([B, 3, H, W], through the original 2D kernel, kept as the reference the 3D one was inflated from).
"""

from __future__ import annotations

import torch
from torch import nn


def inflate_patch_kernel(conv2d: nn.Conv2d, frames: int) -> nn.Conv3d:
    """A Conv3d with kernel/stride (F, p, p) whose weight is the 2D weight repeated over time / F (bias kept)."""
    out_ch, in_ch, kh, kw = conv2d.weight.shape
    conv3d = nn.Conv3d(in_ch, out_ch, kernel_size=(frames, kh, kw), stride=(frames, *conv2d.stride),
                       bias=conv2d.bias is not None)
    with torch.no_grad():
        conv3d.weight.copy_(conv2d.weight.unsqueeze(2).expand(-1, -1, frames, -1, -1) / frames)
        if conv2d.bias is not None:
            conv3d.bias.copy_(conv2d.bias)
    return conv3d


class ChunkPatchEmbeddings(nn.Module):
    """SigLIP's embeddings with a 3D patch embedding for chunks; position embeddings are SigLIP's own."""

    def __init__(self, siglip_embeddings: nn.Module, frames: int):
        super().__init__()
        self.siglip = siglip_embeddings  # patch_embedding (the 2D source kernel) + position_embedding
        self.patch_embedding_3d = inflate_patch_kernel(siglip_embeddings.patch_embedding, frames)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        if pixel_values.dim() == 4:  # an image: SigLIP's 2D path, untouched
            return self.siglip(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)
        if pixel_values.dim() != 5:
            raise ValueError(f"expected chunks [B, F, 3, H, W] or images [B, 3, H, W], got {tuple(pixel_values.shape)}")
        weight = self.patch_embedding_3d.weight
        patches = self.patch_embedding_3d(pixel_values.transpose(1, 2).to(weight.dtype))  # [B, D, 1, g, g]
        embeddings = patches.flatten(2).transpose(1, 2)
        positions = self.siglip.position_embedding.weight
        if embeddings.shape[1] != positions.shape[0]:
            raise ValueError(f"chunk frames give {embeddings.shape[1]} patches but SigLIP has {positions.shape[0]} "
                             "positions: resize frames to the configured image size")
        return embeddings + positions.unsqueeze(0)


class IntraChunkEncoder(nn.Module):
    """[B, F, 3, S, S] chunks (or [B, 3, S, S] images) -> [B, (S / patch / 2)^2, D] pooled visual tokens."""

    def __init__(self, vision_config, chunk_frames: int):
        super().__init__()
        from transformers import SiglipVisionModel

        self.chunk_frames = chunk_frames
        self.vision = SiglipVisionModel(vision_config)
        self.vision.embeddings = ChunkPatchEmbeddings(self.vision.embeddings, chunk_frames)
        grid = vision_config.image_size // vision_config.patch_size
        if grid % 2:
            raise ValueError(f"image_size / patch_size = {grid} must be even for 2x2 pooling")
        self.grid = grid
        self.hidden_size = vision_config.hidden_size

    @property
    def tokens_per_chunk(self) -> int:
        return (self.grid // 2) ** 2

    def source_kernel_parameters(self) -> list[nn.Parameter]:
        """The 2D patch kernel the 3D one was inflated from: only the image reference path uses it."""
        return list(self.vision.embeddings.siglip.patch_embedding.parameters())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dim() == 5 and pixels.shape[1] != self.chunk_frames:
            raise ValueError(f"chunks have {pixels.shape[1]} frames; the encoder was built for {self.chunk_frames}")
        hidden = self.vision(pixel_values=pixels).last_hidden_state  # [B, g*g, D] after SigLIP's post-layernorm
        b, _, d = hidden.shape
        grid = hidden.transpose(1, 2).reshape(b, d, self.grid, self.grid)
        pooled = nn.functional.avg_pool2d(grid, kernel_size=2)  # 2x2 pooling: 4x fewer tokens per chunk
        return pooled.flatten(2).transpose(1, 2)
