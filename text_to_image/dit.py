"""Diffusion transformers: the class-conditional DiT of the previous lesson and the text-conditional one.

Built like facebookresearch/DiT's models.py: patchify with a fixed 2-D sin-cos position embedding,
adaLN-Zero blocks (the modulation and the final layer start at zero, so every block starts as the
identity), unpatchify. The text model adds cross-attention from the patches to the text tokens.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .exercises import implementation


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def sincos_position_embedding(embed_dim: int, grid_size: int) -> torch.Tensor:
    """(grid_size**2, embed_dim) fixed 2-D sine-cosine embedding: half the channels per axis."""
    def one_axis(dim, positions):
        omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2))
        angles = np.outer(positions.reshape(-1), omega)
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    rows, cols = np.meshgrid(np.arange(grid_size, dtype=np.float64), np.arange(grid_size, dtype=np.float64),
                             indexing="ij")
    embedding = np.concatenate([one_axis(embed_dim // 2, rows), one_axis(embed_dim // 2, cols)], axis=1)
    return torch.from_numpy(embedding).float()


class TimestepEmbedder(nn.Module):
    """t in [0, 1] -> a vector: sinusoidal features of 1000 t, then an MLP."""

    def __init__(self, hidden_size: int, frequency_size: int = 256):
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(nn.Linear(frequency_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, t):
        half = self.frequency_size // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        angles = 1000 * t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class CrossAttention(nn.Module):
    """Multi-head attention from image patches (queries) to text tokens (keys and values). The
    computation is Exercise 1 of the notebook (exercises.py): this class holds the projections."""

    def __init__(self, embed_dim: int, context_dim: int, num_heads: int = 8):
        super().__init__()
        assert embed_dim % num_heads == 0, "embed_dim must be divisible by num_heads"
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(context_dim, embed_dim)
        self.v_proj = nn.Linear(context_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x, context, mask=None):
        """x (B, N, embed_dim), context (B, M, context_dim), mask (B, M) True on real tokens -> (B, N, embed_dim)."""
        output, _ = implementation("multi_head_cross_attention")(self, x, context, mask)
        return output

    def attention_weights(self, x, context, mask=None):
        """(B, heads, N, M): how much each patch listens to each token, per head."""
        _, weights = implementation("multi_head_cross_attention")(self, x, context, mask)
        return weights


def mlp(dim: int, ratio: float) -> nn.Sequential:
    hidden = int(dim * ratio)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))


class DiTBlock(nn.Module):
    """adaLN-Zero block: self-attention and MLP, each modulated by the conditioning vector c."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = mlp(dim, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1))
        return x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))


class TextConditionedDiTBlock(nn.Module):
    """adaLN-Zero block with cross-attention to the text between self-attention and the MLP."""

    def __init__(self, dim: int, num_heads: int, context_dim: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.cross_attn = CrossAttention(dim, context_dim, num_heads)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = mlp(dim, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 9 * dim))

    def forward(self, x, c, context, mask=None):
        (shift1, scale1, gate1, shift2, scale2, gate2,
         shift3, scale3, gate3) = self.adaLN_modulation(c).chunk(9, dim=-1)
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1))
        x = x + gate2.unsqueeze(1) * self.cross_attn(modulate(self.norm2(x), shift2, scale2), context, mask)
        return x + gate3.unsqueeze(1) * self.mlp(modulate(self.norm3(x), shift3, scale3))


class FinalLayer(nn.Module):
    def __init__(self, dim: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class _PatchDiT(nn.Module):
    """What both models share: patchify + position embedding, timestep embedding, unpatchify, init."""

    def __init__(self, img_size, patch_size, in_channels, embed_dim, blocks: nn.ModuleList):
        super().__init__()
        assert img_size % patch_size == 0, "img_size must be a multiple of patch_size"
        self.img_size, self.patch_size, self.in_channels = img_size, patch_size, in_channels
        self.grid = img_size // patch_size
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.register_buffer("pos_embed", sincos_position_embedding(embed_dim, self.grid)[None], persistent=False)
        self.t_embedder = TimestepEmbedder(embed_dim)
        self.blocks = blocks
        self.final_layer = FinalLayer(embed_dim, patch_size, in_channels)
        self._initialize()

    def _initialize(self):
        def basic(module):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        self.apply(basic)
        weight = self.patch_embed.weight.data
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        for layer in (self.t_embedder.mlp[0], self.t_embedder.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        # adaLN-Zero: gates and the output start at zero, so the network starts as the identity map.
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        for layer in (self.final_layer.adaLN_modulation[-1], self.final_layer.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def patchify(self, x):
        return self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed

    def unpatchify(self, x):
        batch, p, g, channels = x.shape[0], self.patch_size, self.grid, self.in_channels
        x = x.view(batch, g, g, p, p, channels)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(batch, channels, g * p, g * p)


class ConditionalDiT(_PatchDiT):
    """Class-conditional DiT: c = h_t + e(y), with one extra learned "null" class for CFG."""

    def __init__(self, img_size=32, patch_size=4, in_channels=3, embed_dim=256, depth=6, num_heads=8,
                 mlp_ratio=4.0, num_classes=10):
        blocks = nn.ModuleList(DiTBlock(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        super().__init__(img_size, patch_size, in_channels, embed_dim, blocks)
        self.num_classes = num_classes
        self.y_embedder = nn.Embedding(num_classes + 1, embed_dim)   # index num_classes = null class
        nn.init.normal_(self.y_embedder.weight, std=0.02)

    def forward(self, x, t, y):
        c = self.t_embedder(t) + self.y_embedder(y)
        h = self.patchify(x)
        for block in self.blocks:
            h = block(h, c)
        return self.unpatchify(self.final_layer(h, c))


class TextConditionalDiT(_PatchDiT):
    """Text-conditional DiT: the timestep drives adaLN, the text enters through cross-attention."""

    def __init__(self, img_size=32, patch_size=4, in_channels=3, embed_dim=256, depth=6, num_heads=8,
                 mlp_ratio=4.0, context_dim=512):
        blocks = nn.ModuleList(TextConditionedDiTBlock(embed_dim, num_heads, context_dim, mlp_ratio)
                               for _ in range(depth))
        super().__init__(img_size, patch_size, in_channels, embed_dim, blocks)
        self.context_dim = context_dim

    def forward(self, x, t, context, mask=None):
        """Velocity (B, C, H, W) for noisy images x at times t (B,), text tokens context (B, M, D)."""
        c = self.t_embedder(t)
        h = self.patchify(x)
        for block in self.blocks:
            h = block(h, c, context, mask)
        return self.unpatchify(self.final_layer(h, c))


def model_settings_for(image_shape, small: bool = False) -> dict:
    """The course's DiT sizes for an image shape (C, H, W): the lesson's CIFAR-10 model for 32x32
    images, a smaller one for the 8x8 digits, and a tiny one for quick checks."""
    if small:
        return dict(patch_size=2, embed_dim=32, depth=2, num_heads=4)
    if image_shape[-1] >= 32:   # 8x8 patches of 4x4 pixels
        return dict(patch_size=4, embed_dim=256, depth=6, num_heads=8)
    return dict(patch_size=2, embed_dim=128, depth=4, num_heads=4)   # 4x4 patches of 2x2 pixels
