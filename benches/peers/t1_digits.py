"""PyTorch on workload T1 (benches/WORKLOADS.md): the wide digits model, for compare.sh --t1.

Reads data/digits.csv.gz (64 pixels then the label per row), scales the pixels by 1/16,
shuffles the rows with --seed and keeps the first 80 % (1,437 rows) for training and the
rest (360) for testing, as app/src/data.rs does (the shuffles differ: backflow uses Rust's
StdRng, this script torch.Generator). The model is 16 branches of
Linear(64,64) -> tanh -> Linear(64,64) -> tanh on the same input, concatenated, then
Linear(1024,10), with PyTorch's default initialisation (backflow's default is the same
distribution); cross-entropy; Adam, lr 1e-2, betas (0.9, 0.999), eps 1e-8; mini-batches of
64 rows, reshuffled every epoch, the last one smaller; 30 epochs.

Prints the test accuracy, the wall time of the training loop and the part of it spent in
backward passes; --json writes the same as JSON.

Needs PyTorch from PyPI (`pip install torch`); the CPU build is enough.
"""
import argparse
import gzip
import json
import os
import time

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "data", "digits.csv.gz")


def load_digits(path):
    """Features [rows, 64] scaled into [0, 1] and labels [rows], from the gzipped CSV."""
    features, labels = [], []
    with gzip.open(path, "rt") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            fields = line.split(",")
            if len(fields) != 65:
                raise SystemExit(f"{path}: line {n}: expected 65 fields, found {len(fields)}")
            features.append([float(v) / 16.0 for v in fields[:64]])
            label = float(fields[64])
            if not label.is_integer() or not 0 <= label < 10:
                raise SystemExit(f"{path}: line {n}: bad label {fields[64]!r}")
            labels.append(int(label))
    return torch.tensor(features, dtype=torch.float32), torch.tensor(labels)


def split(x, y, train_fraction, seed):
    """Shuffles the rows with `seed`; the first `train_fraction` train, the rest test."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_train = int(train_fraction * len(y))
    return (x[order[:n_train]], y[order[:n_train]]), (x[order[n_train:]], y[order[n_train:]])


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

    def forward(self, x):
        return self.head(torch.cat([b(x) for b in self.branches], dim=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="the digits CSV (gzipped)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch.set_num_threads (0: PyTorch's default, all cores)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--branches", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args()
    if args.threads < 0 or args.epochs < 1 or args.batch < 1 or not args.lr > 0:
        ap.error("--threads must be >= 0, --epochs and --batch >= 1, --lr > 0")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x, y = load_digits(args.data)
    (x_train, y_train), (x_test, y_test) = split(x, y, 0.8, args.seed)
    model = Wide(x.shape[1], args.branches, args.hidden, 10)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(args.seed + 1)

    backward_time, steps, epoch_losses = 0.0, 0, []
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(len(y_train), generator=shuffle)
        losses = []
        for b in range(0, len(order), args.batch):
            rows = order[b:b + args.batch]
            loss = loss_fn(model(x_train[rows]), y_train[rows])
            opt.zero_grad(set_to_none=True)
            t = time.perf_counter()
            loss.backward()
            backward_time += time.perf_counter() - t
            opt.step()
            steps += 1
            losses.append(loss.item())
        epoch_losses.append(sum(losses) / len(losses))
    train_time = time.perf_counter() - start

    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.branches} branches x hidden {args.hidden}, {args.epochs} epochs, "
          f"batch {args.batch}, Adam lr {args.lr}")
    print(f"test accuracy : {accuracy * 100:.2f}%")
    print(f"final loss    : {epoch_losses[-1]:.4f} (mean of the last epoch)")
    print(f"training time : {train_time:.2f} s ({steps} steps)")
    print(f"backward time : {backward_time:.2f} s")
    if args.json:
        doc = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpus": os.cpu_count(), "epochs": args.epochs, "batch": args.batch,
               "branches": args.branches, "hidden": args.hidden, "lr": args.lr,
               "seed": args.seed, "steps": steps, "test_accuracy": accuracy,
               "final_loss": epoch_losses[-1], "train_s": train_time,
               "backward_s": backward_time}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
