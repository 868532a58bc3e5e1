"""PyTorch version of `backflow train --model moe` (app/src/models/moe.rs), for compare.sh.

8 expert MLPs, each Linear(64,64) -> tanh -> Linear(64,10) giving logits; a gate
Linear(64,8) whose softmax scores the experts; each row goes to its 2 best experts only
(torch.topk), weighted by their softmax renormalised over those 2, and each expert runs on
the rows routed to it alone (index_select, then index_add_ back). The training loss is the
cross-entropy plus 0.01 times the Switch Transformer's load-balancing loss
E * sum_e f_e * P_e (f_e: the fraction of routing slots sent to expert e; P_e: its mean
gate probability). PyTorch's default initialisation (backflow's is the same distribution);
Adam lr 1e-2, batch 64, 30 epochs. Data, split and printed summary: digits_common.py.

Needs PyTorch from PyPI (`pip install torch`); the CPU build is enough.
"""
import torch
import torch.nn.functional as F
from torch import nn

from digits_common import arguments, train_and_report


class MoeNet(nn.Module):
    """Parameter names match backflow's: moe.gate.weight, moe.experts.3.2.bias."""

    def __init__(self, experts=8, top_k=2, hidden=64, balance=0.01):
        super().__init__()
        self.moe = nn.Module()
        self.moe.gate = nn.Linear(64, experts)
        self.moe.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(64, hidden), nn.Tanh(), nn.Linear(hidden, 10))
            for _ in range(experts))
        self.top_k, self.balance = top_k, balance

    def route(self, x):
        probs = F.softmax(self.moe.gate(x), dim=1)
        top_p, top_i = probs.topk(self.top_k, dim=1)
        gates = top_p / top_p.sum(dim=1, keepdim=True)
        out = x.new_zeros(x.shape[0], 10)
        experts = len(self.moe.experts)
        load = torch.zeros(experts)
        for e, expert in enumerate(self.moe.experts):
            rows, slot = (top_i == e).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            load[e] = rows.numel()
            out = out.index_add(0, rows, expert(x[rows]) * gates[rows, slot].unsqueeze(1))
        fraction = load / (x.shape[0] * self.top_k)
        aux = experts * (probs.mean(dim=0) * fraction).sum()
        return out, aux

    def forward(self, x):
        return self.route(x)[0]

    def loss(self, x, y):
        out, aux = self.route(x)
        return F.cross_entropy(out, y) + self.balance * aux


def main():
    args = arguments(__doc__.splitlines()[0], epochs=30, batch=64, lr=1e-2)
    train_and_report("moe", MoeNet(), args)


if __name__ == "__main__":
    main()
