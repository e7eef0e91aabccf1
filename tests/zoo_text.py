"""The zoo's sequence models, written the way real projects write them: an nn.TransformerEncoder text classifier over
token ids, nanoGPT (fused c_attn, attention written out or through SDPA, lm_head tied to the token embedding) and a
packed 2-layer LSTM classifier, with hand FLOP counts.

Hand counts (1 multiply-accumulate = 2 FLOPs; embedding lookups, softmax and norms count 0):
  attention over T tokens, width d:        QKᵀ 2·N·T·T·d  +  AV 2·N·T·T·d  (all heads together)
  LSTM layer, input size I, hidden H:      2·4H·(I + H) per token step (the four gates' W_ih·x + W_hh·h)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = ["TextTransformer", "TinyGPT", "LSTMClassifier", "attention_layer_flops", "text_transformer_flops",
           "gpt_flops", "lstm_flops"]


# ---------------------------------------------------------------- nn.TransformerEncoder over token ids

class TextTransformer(nn.Module):
    """Token + learned position embeddings, nn.TransformerEncoder (batch_first), masked mean pooling, Linear."""

    def __init__(self, vocab_size: int = 100, d_model: int = 32, nhead: int = 4, dim_feedforward: int = 64,
                 num_layers: int = 2, max_len: int = 64, num_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.pos = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        t = input_ids.shape[1]
        h = self.embed(input_ids) + self.pos(torch.arange(t, device=input_ids.device))[None]   # (N, T, d)
        pad = None if attention_mask is None else attention_mask == 0
        h = self.encoder(h, src_key_padding_mask=pad)
        keep = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        keep = keep.unsqueeze(-1).to(h.dtype)                                                # (N, T, 1)
        return self.head((h * keep).sum(1) / keep.sum(1).clamp(min=1))


def attention_layer_flops(n: int, t: int, d: int, d_ff: int) -> int:
    """QKV 2·N·T·d·3d + QKᵀ 2·N·T·T·d + AV 2·N·T·T·d + out 2·N·T·d·d + MLP 2·N·T·d·d_ff·2."""
    return 2 * n * t * d * 3 * d + 2 * 2 * n * t * t * d + 2 * n * t * d * d + 2 * 2 * n * t * d * d_ff


def text_transformer_flops(n: int, t: int, d: int = 32, d_ff: int = 64, num_layers: int = 2,
                           num_classes: int = 2) -> int:
    """num_layers attention layers + the head 2·N·d·classes (embedding lookups count 0)."""
    return num_layers * attention_layer_flops(n, t, d, d_ff) + 2 * n * d * num_classes


# ---------------------------------------------------------------- hand-written attention (nanoGPT style, tied)

class CausalSelfAttention(nn.Module):
    """One fused qkv Linear (c_attn), causal softmax(QKᵀ/√d_h)V written out, output Linear (c_proj)."""

    def __init__(self, d: int, n_head: int, block_size: int, flash: bool = False):
        super().__init__()
        self.n_head, self.flash = n_head, flash
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (B, T, d)
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))  # (B, h, T, dh)
        if self.flash:                                                                              # nanoGPT's default
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))                         # (B, h, T, T)
            att = att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf")).softmax(dim=-1)
            y = att @ v                                                                             # (B, h, T, dh)
        y = y.transpose(1, 2).contiguous().view(b, t, d)
        return self.c_proj(y)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x)) with a 4x GELU MLP."""

    def __init__(self, d: int, n_head: int, block_size: int, flash: bool = False):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, n_head, block_size, flash)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(d, 4 * d), c_proj=nn.Linear(4 * d, d)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x))))


class TinyGPT(nn.Module):
    """A next-token model: embeddings, `n_layer` Blocks, final LayerNorm, lm_head tied to the token embedding.

    flash=True computes attention with F.scaled_dot_product_attention (nanoGPT's path), else written out."""

    def __init__(self, vocab_size: int = 64, block_size: int = 16, n_layer: int = 2, n_head: int = 4, d: int = 32,
                 flash: bool = False):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, d)
        self.wpe = nn.Embedding(block_size, d)
        self.h = nn.ModuleList(Block(d, n_head, block_size, flash) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight                     # weight tying: one Parameter, two modules

    def forward(self, idx: torch.Tensor) -> torch.Tensor:        # (B, T) token ids -> (B, T, vocab) logits
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def gpt_flops(n: int, t: int, vocab_size: int = 64, n_layer: int = 2, d: int = 32) -> int:
    """n_layer attention layers (MLP width 4d) + lm_head 2·N·T·d·vocab."""
    return n_layer * attention_layer_flops(n, t, d, 4 * d) + 2 * n * t * d * vocab_size


# ---------------------------------------------------------------- 2-layer LSTM over packed token ids

class LSTMClassifier(nn.Module):
    """Embedding, a packed 2-layer LSTM, and a Linear on the last layer's final hidden state."""

    def __init__(self, vocab_size: int = 50, embed_dim: int = 16, hidden: int = 32, num_layers: int = 2,
                 num_classes: int = 3, dropout: float = 0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=num_layers, batch_first=True, dropout=dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:   # x (N, T) ids
        emb = self.embedding(x)                                  # (N, T, E)
        if lengths is not None:                                  # packed: each row stops at its own length
            emb = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(emb)                             # h_n (layers, N, H)
        return self.fc(h_n[-1])


def lstm_flops(tokens: int, n: int, embed_dim: int = 16, hidden: int = 32, num_layers: int = 2,
               num_classes: int = 3) -> int:
    """tokens = sum(lengths) steps; layer l: 2·4H·(I_l + H) per step (I_0 = embed_dim, else H); fc 2·N·H·C."""
    sizes = [embed_dim] + [hidden] * (num_layers - 1)
    return sum(tokens * 2 * 4 * hidden * (i + hidden) for i in sizes) + 2 * n * hidden * num_classes
