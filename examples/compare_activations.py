"""Train two small MLPs on scikit-learn's bundled digits with different seeds, then compare
them by their activations (the README's "Comparing models by their activations" example).

Writes, into the folder given (default ``build/compare-activations``):
``digits_seed0.safetensors``, ``digits_seed1.safetensors`` (64 → 32 → 32 → 10, ReLU),
``digits_test.npy`` (the 360 held-out images, pixels scaled to [0, 1]) and
``comparison.png``. Offline: ``load_digits`` ships inside scikit-learn. Run from the
repository root (a few seconds on two CPU threads):

    .venv/bin/python examples/compare_activations.py
    .venv/bin/roon compare-activations build/compare-activations/digits_seed0.safetensors \
        build/compare-activations/digits_seed1.safetensors \
        --inputs build/compare-activations/digits_test.npy --plot comparison.png
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import roon
from roon.ingest.loaders import save_safetensors
from roon.query.activations import plot_comparison

WIDTHS = (64, 32, 32, 10)
EPOCHS = 60  # full-batch Adam: ~97% test accuracy, well under a second per model
TEST = 360  # the last 360 of the 1,797 images are held out


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixels 0..16 → [0, 1]
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], digits.target[order]
    return x[:-TEST], y[:-TEST], x[-TEST:], y[-TEST:]


def train(seed: int, x: np.ndarray, y: np.ndarray) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (fan_in, width) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], strict=True)):
        layers.append(nn.Linear(fan_in, width))
        if i < len(WIDTHS) - 2:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y).long()
    for _ in range(EPOCHS):
        optimiser.zero_grad()
        nn.functional.cross_entropy(net(xs), ys).backward()
        optimiser.step()
    return net


def main(folder: Path) -> None:
    torch.set_num_threads(2)
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = data()
    np.save(folder / "digits_test.npy", x_test)
    paths = []
    for seed in (0, 1):
        start = time.perf_counter()
        net = train(seed, x_train, y_train)
        with torch.no_grad():
            accuracy = (net(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
        mlp = roon.load_model(net, name=f"digits_seed{seed}")
        paths.append(save_safetensors(mlp, folder / f"digits_seed{seed}.safetensors"))
        took = time.perf_counter() - start
        print(f"seed {seed}: test accuracy {accuracy:.3f}, trained in {took:.1f} s")
    result = roon.compare_activations(paths[0], paths[1], folder / "digits_test.npy")
    for layer in result.layers:
        print(
            f"{layer.layer_a}: CKA {layer.cka:.3f}, mean matched r {layer.mean_correlation:.3f}, "
            f"signatures equal {layer.signature_agreement}/{len(layer.pairs)}"
        )
    figure = plot_comparison(result, folder / "comparison.png", layers=["layer0", "layer1"])
    print(f"figure written to {figure}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/compare-activations"))
