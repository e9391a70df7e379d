"""Figures about a trained model's results. Each function returns a matplotlib Figure; callers save it.

    save_figure(confusion_matrix(matrix, ["0", "1", ...]), run_dir / "confusion_matrix.png")
"""

import matplotlib.pyplot as plt
import numpy as np


def training_curves(history: dict[str, list[float]]):
    """Loss and accuracy per epoch, training beside validation, so over- and under-fitting show."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        epochs = np.arange(1, len(history[metric]) + 1)
        axis.plot(epochs, history[metric], "o-", label="training")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], "s-", label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    axes[0].set_yscale("log")  # late-epoch loss differences are too small to see on a linear axis
    # Training figures are running means over each epoch with dropout and augmentation
    # on, which is why they can sit below validation without anything being wrong.
    figure.text(0.5, -0.02, "training: mean over the epoch, dropout and augmentation on; "
                "validation: end of the epoch, inference mode", ha="center", fontsize=8, color="0.4")
    figure.tight_layout()
    return figure


def confusion_matrix(matrix: np.ndarray, class_names: list[str]):
    """Counts of (true row, predicted column). Mistakes are coloured by count; the
    diagonal, which would drown them out, is grey."""
    matrix = np.asarray(matrix)
    mistakes_only = matrix.astype(float)
    np.fill_diagonal(mistakes_only, np.nan)  # NaN cells take the colour map's "bad" colour
    colours = plt.get_cmap("Reds").with_extremes(bad="#e6e6e6")
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    image = axis.imshow(mistakes_only, cmap=colours, vmin=0, vmax=max(np.nanmax(mistakes_only, initial=0), 1))
    figure.colorbar(image, ax=axis, label="test images predicted wrongly")
    for row, column in np.ndindex(matrix.shape):
        if matrix[row, column]:
            strong = row != column and mistakes_only[row, column] > 0.6 * image.norm.vmax
            axis.text(column, row, str(matrix[row, column]), ha="center", va="center",
                      fontsize=8, color="white" if strong else "black")
    ticks = np.arange(len(class_names))
    axis.set_xticks(ticks, class_names)
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    errors = matrix.sum() - np.trace(matrix)
    axis.set_title(f"confusion matrix: {errors} of {matrix.sum()} test images wrong")
    figure.tight_layout()
    return figure


def mistakes(images: np.ndarray, true_labels, predicted_labels, confidences, columns: int = 8):
    """A gallery of misclassified images (N, H, W, C) uint8, each titled true -> predicted (confidence)."""
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.5), squeeze=False)
    for index, axis in enumerate(axes.ravel()):
        axis.axis("off")
        if index >= count:
            continue
        image = images[index]
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
        axis.set_title(f"{true_labels[index]}→{predicted_labels[index]} ({confidences[index]:.0%})", fontsize=8)
    title = "misclassified test images: true→predicted (confidence)" if count else "no misclassified test images"
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def seen_by_model(original: np.ndarray, seen: np.ndarray, probabilities: np.ndarray, title: str):
    """A photo (h, w, 3) uint8, the pixels the model got (H, W, C) uint8 and its probabilities (K,), side by side."""
    figure, axes = plt.subplots(1, 3, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    axes[0].imshow(original)
    axes[0].set_title(f"{title} ({original.shape[1]}x{original.shape[0]})", fontsize=9)
    # Nearest-neighbour blow-up: every model pixel stays a visible square.
    axes[1].imshow(seen[..., 0] if seen.shape[-1] == 1 else seen, cmap="gray", vmin=0, vmax=255,
                   interpolation="nearest")
    axes[1].set_title(f"what the model saw ({seen.shape[1]}x{seen.shape[0]})", fontsize=9)
    for axis in axes[:2]:
        axis.set_xticks([])
        axis.set_yticks([])
    classes = np.arange(len(probabilities))
    best = int(np.argmax(probabilities))
    axes[2].bar(classes, probabilities, color=["tab:blue" if digit == best else "0.7" for digit in classes])
    axes[2].set_xticks(classes)
    axes[2].set_ylim(0, 1)
    axes[2].set_xlabel("digit")
    axes[2].set_ylabel("probability")
    axes[2].set_title(f"prediction: {best} ({probabilities[best]:.2f})", fontsize=9)
    figure.tight_layout()
    return figure
