"""Shared by the PyTorch digits scripts (t1_digits.py, inception_digits.py,
attention_digits.py, moe_digits.py): the data, the split, the training loop and the printed summary, the same
fields and order as `backflow train` prints.

The data is data/digits.csv.gz (64 pixels then the label per row), pixels scaled by 1/16;
the rows are shuffled with --seed and the first 80 % (1,437 rows) train, the rest (360)
test, as app/src/data.rs does (the shuffles differ: backflow uses Rust's StdRng, these
scripts torch.Generator). Training: Adam with betas (0.9, 0.999), eps 1e-8; mini-batches
reshuffled every epoch, the last one smaller; the model's `loss(x, y)` (cross-entropy, plus
any auxiliary term) is minimised; the backward passes are timed on their own.
"""
import argparse
import gzip
import json
import os
import time

import torch

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


def arguments(description, epochs, batch, lr, extra=None):
    """The command line every script takes, with the model's default recipe; `extra(ap)`
    adds a script's own flags."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", default=DEFAULT_DATA, help="the digits CSV (gzipped)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch.set_num_threads (0: PyTorch's default, all cores)")
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="", help="write the results here")
    if extra is not None:
        extra(ap)
    args = ap.parse_args()
    if args.threads < 0 or args.epochs < 1 or args.batch < 1 or not args.lr > 0:
        ap.error("--threads must be >= 0, --epochs and --batch >= 1, --lr > 0")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return args


def train_and_report(name, model, args):
    """Trains `model` (which has `loss(x, y)` and `forward(x) -> logits`) on the digits
    and prints the summary; writes it to args.json too when given."""
    x, y = load_digits(args.data)
    (x_train, y_train), (x_test, y_test) = split(x, y, 0.8, args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    shuffle = torch.Generator().manual_seed(args.seed + 1)

    backward_time, steps, epoch_losses = 0.0, 0, []
    model.train()
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(len(y_train), generator=shuffle)
        losses = []
        for b in range(0, len(order), args.batch):
            rows = order[b:b + args.batch]
            loss = model.loss(x_train[rows], y_train[rows])
            opt.zero_grad(set_to_none=True)
            t = time.perf_counter()
            loss.backward()
            backward_time += time.perf_counter() - t
            opt.step()
            steps += 1
            losses.append(loss.item())
        epoch_losses.append(sum(losses) / len(losses))
    train_time = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    parameters = sum(p.numel() for p in model.parameters())

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"model: {name} ({parameters} parameters), {args.epochs} epochs, "
          f"batch {args.batch}, Adam lr {args.lr}")
    print(f"test accuracy : {accuracy * 100:.2f}%")
    print(f"final loss    : {epoch_losses[-1]:.4f} (mean of the last epoch)")
    print(f"training time : {train_time:.2f} s ({steps} steps)")
    print(f"backward time : {backward_time:.2f} s")
    if args.json:
        doc = {"model": name, **{k: v for k, v in vars(args).items() if k not in ("data", "json")}, "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpus": os.cpu_count(), "epochs": args.epochs, "batch": args.batch,
               "lr": args.lr, "seed": args.seed, "steps": steps, "parameters": parameters,
               "test_accuracy": accuracy, "final_loss": epoch_losses[-1],
               "train_s": train_time, "backward_s": backward_time}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
