"""PyTorch on workload T1 (benches/WORKLOADS.md): the wide digits model, for compare.sh --t1.

16 branches of Linear(64,64) -> tanh -> Linear(64,64) -> tanh on the same input,
concatenated, then Linear(1024,10), with PyTorch's default initialisation (backflow's
default is the same distribution); cross-entropy; Adam, lr 1e-2, batch 64, 30 epochs.
Data, split, training loop and printed summary (test accuracy, training time, the part of
it spent in backward passes; --json writes the same): digits_common.py.

Needs PyTorch from PyPI (`pip install torch`); the CPU build is enough.
"""
import torch
from torch import nn

from digits_common import arguments, train_and_report


class Wide(nn.Module):
    """`branches` copies of Linear -> tanh -> Linear -> tanh, concatenated, then a head.

    Parameter names match backflow's (`branches.3.2.weight`, `head.bias`), so weights saved
    by `backflow train --save` line up with this model's state_dict.
    """

    def __init__(self, inputs=64, branches=16, hidden=64, classes=10):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
            for _ in range(branches)
        )
        self.head = nn.Linear(branches * hidden, classes)
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.head(torch.cat([b(x) for b in self.branches], dim=1))

    def loss(self, x, y):
        return self.loss_fn(self(x), y)


def main():
    def extra(ap):
        ap.add_argument("--branches", type=int, default=16)
        ap.add_argument("--hidden", type=int, default=64)

    args = arguments(__doc__.splitlines()[0], epochs=30, batch=64, lr=1e-2, extra=extra)
    if args.branches < 1 or args.hidden < 1:
        raise SystemExit("--branches and --hidden must be >= 1")
    model = Wide(64, args.branches, args.hidden, 10)
    train_and_report(f"t1 ({args.branches} branches x hidden {args.hidden})", model, args)


if __name__ == "__main__":
    main()
