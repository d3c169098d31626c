"""Makes the image examples' JPEGs on first run (nothing is downloaded): noisy shapes on noisy backgrounds,
two classes, in a folder under the system's temporary directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(tempfile.gettempdir()) / "tune-loader-examples"


def jpeg_folder(name: str, count: int, size: int) -> Path:
    """``count`` JPEGs of ``size`` x ``size`` pixels in ``ROOT/name/{circles,squares}``, made once."""
    folder = ROOT / name
    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(0)
    for index in range(count):
        label = ("circles", "squares")[index % 2]
        (folder / label).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        x, y = rng.integers(0, size // 2, size=2)
        box = (int(x), int(y), int(x + size // 3), int(y + size // 3))
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw = ImageDraw.Draw(image)
        (draw.ellipse if label == "circles" else draw.rectangle)(box, fill=color)
        image.save(folder / label / f"{index:05d}.jpg", quality=90)
    done.touch()
    return folder
