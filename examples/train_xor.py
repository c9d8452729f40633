"""Train small MLPs on XOR with several seeds: the models of the README's input-space example.

Each is 2 → 8 ReLU → 1 (a logit), trained by plain full-batch gradient descent on the
logistic loss, seeded, in about 0.1 s. Every seed learns XOR (logit > 0 exactly on the
XOR-true inputs), with different weights. Run from the repository root:

    .venv/bin/python examples/train_xor.py xor-models        # xor_seed0.pt ... xor_seed4.pt
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def train_xor(seed: int, hidden: int = 8, steps: int = 300, lr: float = 0.5) -> nn.Module:
    """One seeded XOR model (torch.optim is not used: constructing its first optimizer
    costs seconds of imports, longer than the training)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    x = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=torch.float32)
    y = torch.tensor([[0], [1], [1], [0]], dtype=torch.float32)
    net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    for _ in range(steps):
        net.zero_grad()
        F.binary_cross_entropy_with_logits(net(x), y).backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= lr * p.grad
    return net


def main(folder: Path, seeds: range = range(5)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for seed in seeds:
        path = folder / f"xor_seed{seed}.pt"
        torch.save(train_xor(seed).state_dict(), path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1] if len(sys.argv) > 1 else "xor-models")):
        print(path)
