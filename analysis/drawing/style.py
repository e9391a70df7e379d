"""How every figure is rendered and saved: the Agg backend, the resolution, atomic PNG files.

    save_figure(figure, run_dir / "training_curves.png")    # whole or not at all; the figure is closed

Imported first by analysis/drawing/__init__.py, so the backend is chosen before
anything loads matplotlib.pyplot.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed

import matplotlib.pyplot as plt  # noqa: E402

from harness import atomic  # noqa: E402

DPI = 110  # pixels per inch of every saved figure


def save_figure(figure, path: Path, elsewhere: str = "another place") -> None:
    """Save a matplotlib figure as PNG whole, durably and only over a figure of the project's own
    (harness/atomic.py), and close it.

    elsewhere: the flag that chooses another folder, named if a same-named file of someone else's is there.
    """
    try:
        with atomic.replacing(path, elsewhere=elsewhere) as temporary:
            figure.savefig(temporary, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(figure)
