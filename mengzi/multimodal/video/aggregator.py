"""Inter-chunk aggregator: a few pre-norm transformer layers whose rotary position is the chunk index.

Every token of a chunk shares its chunk's position, so tokens of one chunk see no rotation relative to each other
(their q.k is the unrotated one) and only time between chunks rotates; RoPE depends on position differences only,
so shifting every chunk index by the same amount leaves the attention logits unchanged. The mask is causal over
chunk indices (a token sees its own chunk and earlier ones, never later ones) and never crosses groups (an image's
sub-images are aggregated independently). `positions="none"` and `mask="full"` switch both off: the order-blind
ablation the temporal-order benchmark compares against.
"""

from __future__ import annotations

import torch
from torch import nn


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


class ChunkRotary(nn.Module):
    """cos/sin tables for (fractional or integer) chunk positions."""

    def __init__(self, head_dim: int, base: float):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary head dim must be even, got {head_dim}")
        self.register_buffer("inv_freq", 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim),
                             persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angles = positions.float().unsqueeze(-1) * self.inv_freq  # [B, L, head_dim / 2]
        angles = torch.cat([angles, angles], dim=-1).unsqueeze(1)  # [B, 1, L, head_dim]
        return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


class AggregatorLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"aggregator hidden size {hidden} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, hidden // heads
        self.norm1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, mlp_ratio * hidden), nn.GELU(), nn.Linear(mlp_ratio * hidden, hidden))

    def rotated_qk_v(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        b, n, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v

    def attention_logits(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """[B, heads, L, L] pre-mask scaled q.k (what the invariance tests inspect)."""
        q, k, _ = self.rotated_qk_v(x, cos, sin)
        return q @ k.transpose(-1, -2) / self.head_dim**0.5

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        q, k, v = self.rotated_qk_v(x, cos, sin)
        attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed.unsqueeze(1))
        x = x + self.out(attended.transpose(1, 2).flatten(2))
        return x + self.mlp(self.norm2(x))


class InterChunkAggregator(nn.Module):
    def __init__(self, hidden: int, heads: int, layers: int, rope_base: float, positions: str = "chunk",
                 mask: str = "causal"):
        super().__init__()
        if positions not in ("chunk", "none") or mask not in ("causal", "full"):
            raise ValueError(f"aggregator positions must be chunk|none and mask causal|full (got {positions}, {mask})")
        self.positions, self.mask = positions, mask
        self.rotary = ChunkRotary(hidden // heads, rope_base)
        self.layers = nn.ModuleList([AggregatorLayer(hidden, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(hidden)

    def rotary_tables(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.positions == "none":
            positions = torch.zeros_like(positions)
        return self.rotary(positions)

    def allowed(self, positions: torch.Tensor, groups: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """[B, L, L] bool: query i may attend key j (same group, key not padding, key's chunk not later)."""
        allowed = (groups.unsqueeze(2) == groups.unsqueeze(1)) & valid.unsqueeze(1)
        if self.mask == "causal":
            allowed &= positions.unsqueeze(1) <= positions.unsqueeze(2)
        # a padding query attends to itself only, so no row is empty (its output is ignored)
        return allowed | torch.eye(positions.shape[1], dtype=torch.bool, device=positions.device)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, groups: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        """tokens [B, L, D]; positions (chunk index per token), groups and valid (not padding): [B, L]."""
        cos, sin = self.rotary_tables(positions)
        allowed = self.allowed(positions, groups, valid)
        x = tokens
        for layer in self.layers:
            x = layer(x, cos, sin, allowed)
        return self.norm(x)
