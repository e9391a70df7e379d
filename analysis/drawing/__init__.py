"""Everything that draws: matplotlib figures and the HTML report. Arrays in, figures out.

    from analysis import drawing
    drawing.save_figure(drawing.results.training_curves(history), run_dir / "training_curves.png")

results (training curves, confusion matrix, mistakes, what predict.py's model
saw), layers (what a model's layers respond to, from analysis/introspection's
numbers), report (visualize.py --report's self-contained page), and style
(backend, resolution and saving, set here once for all of them).
"""

from analysis.drawing.style import DPI, save_figure  # first: it chooses the backend before pyplot loads

from analysis.drawing import layers, report, results

__all__ = ["DPI", "layers", "report", "results", "save_figure"]
