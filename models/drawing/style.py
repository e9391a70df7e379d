"""How every figure is rendered and saved: the Agg backend, the resolution, atomic PNG files.

    save_figure(figure, run_dir / "training_curves.png")    # whole or not at all; the figure is closed

Imported first by models/drawing/__init__.py, so the backend is chosen before
anything loads matplotlib.pyplot.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed

import matplotlib.pyplot as plt  # noqa: E402

from models import atomic  # noqa: E402

DPI = 110  # pixels per inch of every saved figure
MAKER = "Software"  # the PNG text key that names what wrote a figure (a standard PNG keyword)


def save_figure(figure, path: Path, maker: str | None = None) -> None:
    """Save a matplotlib figure as PNG atomically (readers see the old file or the new one) and close it.

    maker: written into the PNG's Software text, so that a later run can tell its own file (drawn_by) from a
    user's of the same name in a folder the user chose.
    """
    try:
        with atomic.replacing(path) as temporary:
            figure.savefig(temporary, format="png", dpi=DPI, bbox_inches="tight",
                           metadata={MAKER: maker} if maker else None)
    finally:
        plt.close(figure)


def drawn_by(path: Path, maker: str) -> bool:
    """Whether the file at `path` is a PNG whose Software text is `maker` (save_figure's, or PIL's pnginfo)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.format == "PNG" and image.info.get(MAKER) == maker
    except (OSError, UnidentifiedImageError, ValueError):
        return False
