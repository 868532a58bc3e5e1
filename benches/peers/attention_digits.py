"""PyTorch version of `backflow train --model attention` (app/src/models/attention.rs), for
compare.sh.

The 8x8 image read as 8 row tokens of 8 pixels; Linear(8,64) token embedding plus learned
positions (nn.Embedding(8,64)); 2 pre-norm encoder layers, each h + attention(LN(h)) then
h + MLP(LN(h)), with 8 heads of 8 (query, key and value projections Linear(64,64) split
into heads, which is the distribution backflow draws per head, then an output
Linear(64,64)) and an MLP Linear(64,128) -> GELU (tanh approximation) -> Linear(128,64);
a final LayerNorm, the mean over the tokens, Linear(64,10). PyTorch's default
initialisation (backflow's is the same distribution); Adam lr 2e-3, batch 64, 30 epochs.
Data, split and printed summary: digits_common.py.

Needs PyTorch from PyPI (`pip install torch`); the CPU build is enough.
"""
import torch.nn.functional as F
from torch import nn
import torch

from digits_common import arguments, train_and_report

TOKENS = 8


class Attention(nn.Module):
    def __init__(self, d_model, heads):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x):
        b, t, d = x.shape

        def split(h):
            return h.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        heads = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d_head)) v
        return self.out(heads.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    def __init__(self, d_model, heads, mlp):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = Attention(d_model, heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp), nn.GELU(approximate="tanh"),
                                 nn.Linear(mlp, d_model))

    def forward(self, h):
        h = h + self.attention(self.norm1(h))
        return h + self.mlp(self.norm2(h))


class AttentionNet(nn.Module):
    def __init__(self, d_model=64, heads=8, layers=2, mlp=128):
        super().__init__()
        self.embed = nn.Linear(TOKENS, d_model)
        self.positions = nn.Embedding(TOKENS, d_model)
        self.layers = nn.ModuleList(EncoderLayer(d_model, heads, mlp) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x):
        h = self.embed(x.view(-1, TOKENS, TOKENS)) + self.positions.weight
        for layer in self.layers:
            h = layer(h)
        return self.head(self.norm(h).mean(dim=1))

    def loss(self, x, y):
        return F.cross_entropy(self(x), y)


def main():
    args = arguments(__doc__.splitlines()[0], epochs=30, batch=64, lr=2e-3)
    train_and_report("attention", AttentionNet(), args)


if __name__ == "__main__":
    main()
