"""How far a model's sight reaches: its accuracy on test images turned, resized, moved, lit, inverted, noised,
blurred and covered, each over a range of strengths (evaluate.py --robustness).

    from analysis import robustness
    picked = robustness.pick(len(labels), 2000, seed=0)
    result = robustness.sweep(robustness.classifier_judge(model, labels[picked]), images[picked])
    result["rotation"]   # {"unit": "degrees", "strengths": [-60, ..., 60], "accuracy": [...]}
    result["clean"]      # accuracy on the images as they are

Every change is a pure function of uint8 images (data/transforms.py) applied
identically to every model swept with the same images and seed, so runs compare
strength by strength. A colour model also gets hue turns.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from data import transforms
from data.numbers import whole_numbers_right
from models.ctc import greedy_read
from analysis.introspection import model_outputs


@dataclass(frozen=True)
class Change:
    """One graded change: its unit, the strengths swept (the identity among them), and how to apply one."""

    unit: str
    strengths: tuple[float, ...]
    identity: float  # the strength that leaves an image as it is
    apply: Callable[[np.ndarray, float, int], np.ndarray]  # (images, strength, seed) -> images
    colour_only: bool = False


THIRD = 1 / 3
CHANGES = {
    "rotation": Change("degrees", (-60, -45, -30, -15, 0, 15, 30, 45, 60), 0,
                       lambda images, degrees, seed: transforms.rotate(images, degrees)),
    "scale": Change("factor", (0.5, 0.6, 0.7, 0.85, 1.0, 1.15, 1.3, 1.5), 1.0,
                    lambda images, factor, seed: transforms.scale(images, factor)),
    "shift_x": Change("share of the width", (-THIRD, -0.25, -1 / 6, -1 / 12, 0, 1 / 12, 1 / 6, 0.25, THIRD), 0,
                      lambda images, share, seed: transforms.shift_x(images, share)),
    "shift_y": Change("share of the height", (-THIRD, -0.25, -1 / 6, -1 / 12, 0, 1 / 12, 1 / 6, 0.25, THIRD), 0,
                      lambda images, share, seed: transforms.shift_y(images, share)),
    "brightness": Change("grey levels added", (-150, -100, -50, 0, 50, 100, 150), 0,
                         lambda images, levels, seed: transforms.brightness(images, levels)),
    "contrast": Change("factor", (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0), 1.0,
                       lambda images, factor, seed: transforms.contrast(images, factor)),
    "inversion": Change("share of the negative", (0, 0.25, 0.5, 0.75, 1.0), 0,
                        lambda images, share, seed: transforms.inversion(images, share)),
    "noise": Change("grey levels (standard deviation)", (0, 16, 32, 64, 96, 128), 0,
                    lambda images, sigma, seed: transforms.noise(images, sigma, seed)),
    "blur": Change("pixels (Gaussian sigma)", (0, 0.5, 1.0, 1.5, 2.0, 3.0), 0,
                   lambda images, sigma, seed: transforms.blur(images, sigma)),
    "occlusion": Change("share of the shorter side (a square)", (0, 0.1, 0.2, 0.3, 0.4, 0.5), 0,
                        lambda images, share, seed: transforms.occlusion(images, share, seed)),
    "hue": Change("degrees round the colour wheel", (-180, -120, -60, 0, 60, 120, 180), 0,
                  lambda images, degrees, seed: transforms.hue(images, degrees), colour_only=True),
}


def pick(count: int, wanted: int, seed: int) -> np.ndarray:
    """Sorted indices of `wanted` test images of `count` (all if fewer), chosen by `seed`."""
    if wanted >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, wanted, replace=False))


def classifier_judge(model, labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function of uint8 images (N, H, W, C) -> (N,) bool: the classifier's most probable digit is the label."""
    def judge(images):
        return model_outputs(model, images).argmax(axis=1) == labels
    return judge


def reader_judge(model, labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function of uint8 images (N, H, W, C) -> (N,) bool: the reader reads the whole number right (every digit
    and the length), labels (N, MAX_DIGITS) digits then PADDING."""
    def judge(images):
        return whole_numbers_right(labels, greedy_read(model_outputs(model, images))["digits"])
    return judge


def changes_for(channels: int) -> dict[str, Change]:
    """The changes swept for images with `channels` channels: hue only for colour."""
    return {name: change for name, change in CHANGES.items() if channels == 3 or not change.colour_only}


def sweep(judge: Callable[[np.ndarray], np.ndarray], images: np.ndarray, seed: int = 0) -> dict:
    """robustness.json's content: "clean" accuracy, and per change its unit, strengths and accuracy at each.

    images: uint8 (N, H, W, C); judge: images -> (N,) bool, right or wrong per image. Noise and occlusion draw
    from `seed`, the same for every strength's images (so the curves are smooth, not resampled).
    """
    clean = float(judge(images).mean())
    result = {"clean": clean, "images": int(len(images)), "seed": int(seed)}
    for name, change in changes_for(images.shape[-1]).items():
        accuracy = [clean if strength == change.identity else float(judge(change.apply(images, strength, seed)).mean())
                    for strength in change.strengths]
        result[name] = {"unit": change.unit, "strengths": [float(strength) for strength in change.strengths],
                        "accuracy": accuracy}
    return result
