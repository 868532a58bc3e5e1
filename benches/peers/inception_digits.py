"""PyTorch version of `backflow train --model inception` (app/src/models/inception.rs), for
compare.sh.

The 8x8 image as 1 channel; two Inception blocks, each four branches on the same input,
concatenated along the channels: a 1x1 convolution; 1x1 then 3x3; 1x1 then 5x5; a 3x3 max
pool (stride 1, padding 1) then 1x1; every convolution padded to keep 8x8 and followed by a
ReLU. Block 1: 8, 8->16, 4->8, 8 channels (40 out); block 2: 16, 16->32, 8->16, 16 (80
out). Then a 2x2 max pool and Linear(80*4*4, 10). PyTorch's default initialisation
(backflow's is the same distribution); Adam lr 2e-3, batch 64, 15 epochs. Data, split and
printed summary: digits_common.py.

Needs PyTorch from PyPI (`pip install torch`); the CPU build is enough.
"""
import torch
import torch.nn.functional as F
from torch import nn

from digits_common import arguments, train_and_report


def conv(inputs, outputs, k):
    return nn.Conv2d(inputs, outputs, k, padding=k // 2)


class Block(nn.ModuleList):
    """Parameter names match backflow's: block1.1.2.weight is block 1's 3x3 convolution."""

    def __init__(self, inputs, c1, c3, c5, pool):
        super().__init__([
            nn.Sequential(conv(inputs, c1, 1), nn.ReLU()),
            nn.Sequential(conv(inputs, c3[0], 1), nn.ReLU(), conv(c3[0], c3[1], 3), nn.ReLU()),
            nn.Sequential(conv(inputs, c5[0], 1), nn.ReLU(), conv(c5[0], c5[1], 5), nn.ReLU()),
            nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(inputs, pool, 1), nn.ReLU()),
        ])

    def forward(self, x):
        return torch.cat([branch(x) for branch in self], dim=1)


class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = Block(1, 8, (8, 16), (4, 8), 8)
        self.block2 = Block(40, 16, (16, 32), (8, 16), 16)
        self.head = nn.Linear(80 * 4 * 4, 10)

    def forward(self, x):
        h = self.block2(self.block1(x.view(-1, 1, 8, 8)))
        return self.head(F.max_pool2d(h, 2).flatten(1))

    def loss(self, x, y):
        return F.cross_entropy(self(x), y)


def main():
    args = arguments(__doc__.splitlines()[0], epochs=15, batch=64, lr=2e-3)
    train_and_report("inception", Inception(), args)


if __name__ == "__main__":
    main()
