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
    figure, axis = mistake_counts(matrix, np.eye(len(matrix), dtype=bool), class_names, class_names,
                                  "test images predicted wrongly", size=(6.5, 5.5))
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    errors = matrix.sum() - np.trace(matrix)
    axis.set_title(f"confusion matrix: {errors} of {matrix.sum()} test images wrong")
    figure.tight_layout()
    return figure


def mistake_counts(counts: np.ndarray, right: np.ndarray, column_names: list[str], row_names: list[str],
                   colour_label: str, size: tuple[float, float]):
    """(figure, axis) with a table of counts (R, C): the cells where `right` (R, C) is False coloured by count,
    the right ones grey (they would drown the mistakes out), every non-zero count written in its cell."""
    wrong_only = np.where(right, np.nan, counts.astype(float))  # NaN cells take the colour map's "bad" colour
    colours = plt.get_cmap("Reds").with_extremes(bad="#e6e6e6")
    figure, axis = plt.subplots(figsize=size)
    image = axis.imshow(wrong_only, cmap=colours, vmin=0, vmax=max(np.nanmax(wrong_only, initial=0), 1))
    figure.colorbar(image, ax=axis, label=colour_label)
    for row, column in np.ndindex(counts.shape):
        if counts[row, column]:
            strong = not right[row, column] and wrong_only[row, column] > 0.6 * image.norm.vmax
            axis.text(column, row, str(counts[row, column]), ha="center", va="center",
                      fontsize=8, color="white" if strong else "black")
    axis.set_xticks(np.arange(len(column_names)), column_names)
    axis.set_yticks(np.arange(len(row_names)), row_names)
    return figure, axis


def mistakes(images: np.ndarray, true_labels, predicted_labels, confidences, columns: int = 8):
    """A gallery of misclassified images (N, H, W, C) uint8, each titled true -> predicted (confidence)."""
    titles = [f"{true}→{predicted} ({confidence:.0%})"
              for true, predicted, confidence in zip(true_labels, predicted_labels, confidences)]
    title = "misclassified test images: true→predicted (confidence)" if len(images) else "no misclassified test images"
    return gallery(images, titles, title, columns, cell=(1.3, 1.5))


def gallery(images: np.ndarray, titles: list[str], title: str, columns: int, cell: tuple[float, float]):
    """Images (N, H, W, C) uint8 in rows of `columns`, each with its title; cell: (width, height) in inches."""
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * cell[0], rows * cell[1]), squeeze=False)
    for index, axis in enumerate(axes.ravel()):
        axis.axis("off")
        if index >= count:
            continue
        image = images[index]
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
        axis.set_title(titles[index], fontsize=8)
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


def number_seen(original: np.ndarray, seen: np.ndarray, number: str, digit_x, title: str, region=None):
    """A photo (h, w, 3) uint8 and the pixels a reader got (H, W, C) uint8, with each digit read marked.

    digit_x: (len(number),) where each digit was read, in the reader's input pixels (its column's middle).
    region: (left, right), the photo's columns the reader got, outlined on the photo if not the whole width.
    """
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1.6]})
    axes[0].imshow(original)
    axes[0].set_title(f"{title} ({original.shape[1]}x{original.shape[0]})", fontsize=9)
    if region is not None and tuple(region) != (0, original.shape[1]):
        axes[0].add_patch(plt.Rectangle((region[0] - 0.5, -0.5), region[1] - region[0], original.shape[0],
                                        fill=False, edgecolor="tab:orange", linewidth=2))
    axes[1].imshow(seen[..., 0] if seen.shape[-1] == 1 else seen, cmap="gray", vmin=0, vmax=255,
                   interpolation="nearest")
    for digit, x in zip(number, digit_x):
        axes[1].axvline(x, color="tab:orange", linewidth=1.5, alpha=0.8)
        axes[1].text(x, -0.5, digit, color="tab:orange", ha="center", va="bottom", fontsize=12, weight="bold")
    axes[1].set_title(f"what the reader saw ({seen.shape[1]}x{seen.shape[0]}): read {number or 'nothing'}",
                      fontsize=9, pad=16)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    return figure


def number_mistakes(images: np.ndarray, readings: list[str], truths: list[str], probabilities, columns: int = 4):
    """A gallery of wrongly read numbers (N, H, W, C) uint8, each titled "read X, truth Y (probability)".

    readings, truths: N digit strings ("" when nothing was read); probabilities: (N,) each reading's.
    """
    titles = []
    for reading, truth, probability in zip(readings, truths, probabilities):
        shown = f"{probability:.0%}" if probability >= 0.005 else "<1%"  # a greedy path's probability can be tiny
        titles.append(f"read {reading or 'nothing'}, truth {truth} ({shown})")
    title = "wrongly read test numbers, most confident first" if len(images) else "no wrongly read test numbers"
    return gallery(images, titles, title, columns, cell=(2.4, 1.3))


def length_confusion(counts: np.ndarray, true_lengths: list[int], read_lengths: list[int]):
    """Counts (len(true_lengths), len(read_lengths)) of numbers by true (row) and read (column) digit count.

    Cells read at the wrong length are coloured by count; the right ones, which
    would drown them out, are grey.
    """
    counts = np.asarray(counts)
    right = np.equal.outer(true_lengths, read_lengths)
    figure, axis = mistake_counts(counts, right, [str(length) for length in read_lengths],
                                  [str(length) for length in true_lengths], "test numbers read at the wrong length",
                                  size=(6.5, 5))
    axis.set_xlabel("digits read")
    axis.set_ylabel("true digits")
    axis.set_title(f"{counts[~right].sum()} of {counts.sum()} test numbers read at the wrong length", fontsize=10)
    figure.tight_layout()
    return figure


def robustness(sweeps: dict[str, dict], title: str):
    """One small panel per change (analysis/robustness.py): accuracy against strength, a line per run, each
    run's clean accuracy dashed in its colour.

    sweeps: run label -> robustness.json content; every run swept over the same changes and strengths.
    """
    first = next(iter(sweeps.values()))
    names = [name for name, value in first.items() if isinstance(value, dict)]
    columns = 4
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.5 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, name in zip(axes.flat, names):
        for colour, (label, result) in zip(colours, sweeps.items()):
            curve = result[name]
            axis.plot(curve["strengths"], curve["accuracy"], "o-", color=colour, markersize=3, linewidth=1.3,
                      label=label)
            axis.axhline(result["clean"], color=colour, linestyle="--", linewidth=0.8, alpha=0.7)
        axis.set_title(name.replace("_", " "), fontsize=9)
        axis.set_xlabel(first[name]["unit"], fontsize=8)
        axis.set_ylim(0, 1.02)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(names):]:
        axis.axis("off")
    axes.flat[0].set_ylabel("accuracy", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower right", fontsize=8, frameon=False)
    figure.suptitle(f"{title} (dashed: accuracy on the unchanged images)", fontsize=10)
    figure.tight_layout()
    return figure


def mistake_kinds(groups, images: np.ndarray, captions: list[str], title: str, writers: list[dict] | None = None,
                  examples: int | None = None):
    """One page of a model's mistakes grouped by kind (analysis/mistake_kinds.py): a row per group, its title
    then its most confident examples from `images` (N, H, W, C) uint8, each captioned by `captions` (N strings);
    below, the writers with the most mistakes when `writers` lists them (writer_errors)."""
    height, width = images.shape[1:3]
    examples = examples or (8 if width <= 2 * height else 4)  # fewer, wider cells for whole numbers
    cell_width = 1.2 * max(1.0, width / height / 2)  # inches
    rows = len(groups) + (1 if writers else 0)
    figure, axes = plt.subplots(max(rows, 1), examples + 1, squeeze=False,
                                figsize=(3.2 + examples * cell_width, 1.35 * max(rows, 1)),
                                gridspec_kw={"width_ratios": [3.2 / cell_width] + [1] * examples})
    for axis in axes.ravel():
        axis.axis("off")
    for row, group in enumerate(groups):
        axes[row, 0].text(0, 0.5, group.title, fontsize=8.5, va="center", ha="left", wrap=True)
        for column, index in enumerate(group.examples[:examples], start=1):
            picture = images[index]
            axes[row, column].imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray",
                                     vmin=0, vmax=255)
            axes[row, column].set_title(captions[index], fontsize=7)
    if writers:
        axis = plt.subplot2grid(axes.shape, (rows - 1, 0), colspan=axes.shape[1], fig=figure)
        names = [str(entry["writer"]) for entry in writers]
        axis.bar(names, [entry["error_rate"] for entry in writers], color="tab:red")
        axis.set_xlabel("writer (the most mistaken)", fontsize=8)
        axis.set_ylabel("share wrong", fontsize=8)
        axis.tick_params(labelsize=7)
    figure.suptitle(title if groups else f"{title}: no mistakes", fontsize=10)
    figure.tight_layout()
    return figure
