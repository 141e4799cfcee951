"""One seed's stitched test objects side by side: a grid of inits (rows) × input transforms
(column pairs: amplitude, phase), the truth on top, every panel on the truth's colour scale.

The images travel inside the benchmark's JSON record (8-bit, their range stored), so that
``benchmarks.replot`` draws the grid again like every other figure; 8 bits are for looking at, the
metrics are computed from the full-precision objects before they are stored.
"""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from .figures import pyplot

__all__ = ["decode_image", "encode_image", "object_grid", "object_images"]

LEVELS = 255
# sequential maps: the phase here spans 0…π/2 and does not wrap, so a cyclic map would make its ends alike
COLOUR_MAPS = {"amplitude": "viridis", "phase": "cividis"}


def encode_image(image: np.ndarray) -> dict[str, Any]:
    """A real 2-D image as 8 bits over its own [low, high], base64 text (for a JSON record)."""
    low, high = float(image.min()), float(image.max())
    scaled = np.zeros(image.shape) if high == low else (image - low) / (high - low)
    levels = np.rint(scaled * LEVELS).astype(np.uint8)
    return {"shape": list(image.shape), "low": low, "high": high,
            "uint8_base64": base64.b64encode(levels.tobytes()).decode("ascii")}


def decode_image(encoded: dict[str, Any]) -> np.ndarray:
    """The image ``encode_image`` stored, within (high − low) / 510 of the original."""
    levels = np.frombuffer(base64.b64decode(encoded["uint8_base64"]), dtype=np.uint8)
    return encoded["low"] + levels.reshape(encoded["shape"]) / LEVELS * (encoded["high"] - encoded["low"])


def object_images(image: np.ndarray) -> dict[str, dict[str, Any]]:
    """A complex object's amplitude and phase (rad), encoded."""
    return {"amplitude": encode_image(np.abs(image)), "phase": encode_image(np.angle(image))}


def _scores(entry: dict[str, Any], name: str) -> str:
    """A panel's caption: the object's SSIM, and its lattice share where the record has it."""
    short = "amp" if name == "amplitude" else "phase"
    ssim, lattice = entry.get(f"ssim_{short}"), entry.get(f"lattice_{short}")
    text = f"SSIM {'n/a' if ssim is None else f'{ssim:.2f}'}"
    return text if lattice is None else f"{text} · lattice {lattice:.2f}"


def object_grid(objects: dict[str, Any], strategies: Sequence[str], transforms: Sequence[str],
                title: str) -> Any:
    """``objects``: {"truth": images, "variants": [{"strategy", "input_transform", "images",
    "ssim_amp", "ssim_phase"}], optionally "iterative": {"images", "ssim_amp", "ssim_phase"}}, images as
    ``object_images`` makes them; the iterative reconstruction stands beside the truth. None without
    matplotlib."""
    plt = pyplot()
    if plt is None:
        return None
    cell = {(v["strategy"], v["input"] if "input" in v else v["input_transform"]): v for v in objects["variants"]}
    truth = {name: decode_image(objects["truth"][name]) for name in ("amplitude", "phase")}
    # a sparse scan's uncovered pixels are stitched as 0 (evaluate_object): masked in every panel, and
    # left out of the colour scale, which they would otherwise stretch down to 0
    gaps = truth["amplitude"] == 0

    def masked(image: np.ndarray) -> np.ndarray:
        return np.ma.masked_where(gaps, image) if gaps.any() and image.shape == gaps.shape else image

    scales = {name: (float(image[~gaps].min()), float(image[~gaps].max())) if (~gaps).any()
              else (float(image.min()), float(image.max())) for name, image in truth.items()}
    iterative = objects.get("iterative")
    rows, cols = len(strategies) + 1, max(2 * len(transforms), 4 if iterative else 2)
    fig, axes = plt.subplots(rows, cols, figsize=(1.55 * cols + 0.8, 1.6 * rows + 0.9), squeeze=False,
                             layout="constrained")
    shown = {}
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for col, name in enumerate(("amplitude", "phase")):
        shown[name] = axes[0, col].imshow(masked(truth[name]), cmap=COLOUR_MAPS[name], vmin=scales[name][0],
                                          vmax=scales[name][1])
        axes[0, col].set_title(f"truth: {name}", fontsize=7)
    for ax in axes[0, 2:]:
        ax.axis("off")
    if iterative:
        for k, name in enumerate(("amplitude", "phase")):
            ax = axes[0, 2 + k]
            ax.axis("on")
            ax.imshow(masked(decode_image(iterative["images"][name])), cmap=COLOUR_MAPS[name], vmin=scales[name][0],
                      vmax=scales[name][1])
            ax.set_title(f"iterative: {name}\n{_scores(iterative, name)}", fontsize=6)
    for row in range(1, rows):
        for ax in axes[row, 2 * len(transforms):]:
            ax.axis("off")
    axes[0, 0].set_ylabel("truth", fontsize=7)
    for row, strategy in enumerate(strategies, start=1):
        axes[row, 0].set_ylabel(strategy, fontsize=7)
        for t, transform in enumerate(transforms):
            variant = cell.get((strategy, transform))
            for k, name in enumerate(("amplitude", "phase")):
                ax = axes[row, 2 * t + k]
                if variant is None:
                    ax.axis("off")
                    continue
                ax.imshow(masked(decode_image(variant["images"][name])), cmap=COLOUR_MAPS[name], vmin=scales[name][0],
                          vmax=scales[name][1])
                short = "amp" if name == "amplitude" else "phase"
                ax.set_title(f"{transform} · {short}\n{_scores(variant, name)}", fontsize=6)
    fig.colorbar(shown["amplitude"], ax=axes[:, 0], shrink=0.5, label="amplitude", location="left")
    fig.colorbar(shown["phase"], ax=axes[:, -1], shrink=0.5, label="phase (rad)")
    # wrapped to the figure's width (about 16 characters an inch at 7 pt), so no edge cuts it
    fig.supxlabel("\n".join(textwrap.wrap(title, max(40, int(fig.get_figwidth() * 16)))), fontsize=7)
    return fig
