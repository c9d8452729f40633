"""Write the hand-derived example circuits in examples/circuits/ as PyTorch state_dicts.

The circuits are the ReLU constructions of "Mathematical Circuits in Neural Nets" (Sean
Osier, 2022): |x| = relu(x) + relu(-x), min(a, b) = relu(b) - relu(-b) - relu(b - a),
and XOR of two bits = relu(a + b) - 2·relu(a + b - 1). Run from the repository root:

    .venv/bin/python examples/build_circuits.py
"""

from pathlib import Path

import torch
from torch import nn

CIRCUITS = {
    # name: (hidden weight, hidden bias, output weight, output bias)
    "abs": ([[1.0], [-1.0]], [0.0, 0.0], [[1.0, 1.0]], [0.0]),
    "min": ([[0.0, 1.0], [0.0, -1.0], [-1.0, 1.0]], [0.0, 0.0, 0.0], [[1.0, -1.0, -1.0]], [0.0]),
    "xor": ([[1.0, 1.0], [1.0, 1.0]], [0.0, -1.0], [[1.0, -2.0]], [0.0]),
}


def build(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (w1, b1, w2, b2) in CIRCUITS.items():
        net = nn.Sequential(nn.Linear(len(w1[0]), len(w1)), nn.ReLU(), nn.Linear(len(w1), 1))
        with torch.no_grad():
            net[0].weight.copy_(torch.tensor(w1))
            net[0].bias.copy_(torch.tensor(b1))
            net[2].weight.copy_(torch.tensor(w2))
            net[2].bias.copy_(torch.tensor(b2))
        path = folder / f"{name}.pt"
        torch.save(net.state_dict(), path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build(Path(__file__).parent / "circuits"):
        print(path)
