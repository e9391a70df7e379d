"""Read pictures of numbers with one baseline OCR tool, in the baselines' own environment.

    ls photos/*.png | bench/baselines/.venv/bin/python bench/baselines/run_baseline.py paddleocr-v4

bench/read_numbers.py runs this in a subprocess: image paths come one a line on
stdin; one JSON object goes to stdout: {"texts": [...], "seconds": [...],
"load_seconds": ..., "total_seconds": ..., "versions": {...}}, the text each
tool returned (not yet reduced to digits) and the seconds each image took, in
the order given. It needs nothing from the project, only the packages of
requirements.txt (rapidocr-onnxruntime) and the tesseract binary.

Readers:
- paddleocr-v4: the package's own call for recognition alone,
  RapidOCR()(path, use_det=False, use_cls=False, use_rec=True). Before the
  recogniser resizes the picture to its input height, that call scales a
  picture whose shorter side is under Global.min_side_len pixels up to it and
  rounds both sides to multiples of 32, which changes the aspect ratio.
- paddleocr-v4-digits: the same model given its best fair chance: the
  picture's own pixels straight into the recogniser (its own resize rule only),
  and CTC decoding restricted to the blank and the ten ASCII digits, as
  Tesseract's whitelist restricts Tesseract.
- tesseract: the tesseract binary, one process per image (as pytesseract
  runs it): English model, --psm 7 (one line of text), digits whitelisted, the
  picture as it is (no upscaling). OMP_THREAD_LIMIT=1, as Tesseract's
  documentation advises when many small images are read: its threads only
  slow small images down.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

DIGITS = "0123456789"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def paddleocr_v4(digits_only: bool):
    """(read(path) -> text, versions) for PaddleOCR's PP-OCRv4 recogniser as rapidocr-onnxruntime ships it."""
    import numpy as np
    import onnxruntime
    import rapidocr_onnxruntime

    engine = rapidocr_onnxruntime.RapidOCR()
    recogniser = engine.text_rec
    model_files = sorted(Path(rapidocr_onnxruntime.__file__).parent.glob("models/*rec*.onnx"))
    versions = {"rapidocr-onnxruntime": metadata.version("rapidocr-onnxruntime"),
                "onnxruntime": onnxruntime.__version__,
                "recognition model": ", ".join(path.name for path in model_files),
                "recognition model sha256": ", ".join(sha256(path) for path in model_files)}

    if not digits_only:
        def read(path: str) -> str:
            result, _ = engine(path, use_det=False, use_cls=False, use_rec=True)
            return result[0][0] if result else ""  # result: [[text, confidence]]
        return read, versions

    characters = recogniser.postprocess_op.character  # index 0 is the CTC blank
    allowed = np.array([0] + [index for index, character in enumerate(characters) if character in DIGITS])
    _, height, width = recogniser.rec_image_shape

    def read(path: str) -> str:
        image = engine.load_img(path)  # (h, w, 3) uint8 BGR, as the package's own call loads it
        # (1, 3, height, max(width, w * height / h)) float32 in [-1, 1]: the recogniser's own resize and padding
        batch = recogniser.resize_norm_img(image, width / height)[np.newaxis]
        scores = recogniser.session(batch)[0][0]  # (columns, characters + blank)
        best = allowed[scores[:, allowed].argmax(axis=1)]
        # Greedy CTC: merge repeats, then drop blanks.
        return "".join(characters[index] for position, index in enumerate(best)
                       if index != 0 and (position == 0 or index != best[position - 1]))
    return read, versions


def tesseract():
    """(read(path) -> text, versions) for the tesseract binary on PATH."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise SystemExit("error: no tesseract on PATH; install the baselines with bash bench/baselines/install.sh.")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    languages = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, check=True).stdout
    # First line: List of available languages in "/usr/share/tesseract-ocr/5/tessdata/" (2):
    model = Path(languages.splitlines()[0].split('"')[1]) / "eng.traineddata"
    versions = {"tesseract": (version.stdout or version.stderr).splitlines()[0],
                "eng.traineddata sha256": sha256(model)}
    options = ["-l", "eng", "--psm", "7", "-c", f"tessedit_char_whitelist={DIGITS}"]
    environment = dict(os.environ, OMP_THREAD_LIMIT="1")

    def read(path: str) -> str:
        done = subprocess.run([binary, path, "stdout", *options], capture_output=True, text=True,
                              env=environment, check=True)
        return done.stdout.strip()
    return read, versions


READERS = {
    "paddleocr-v4": lambda: paddleocr_v4(digits_only=False),
    "paddleocr-v4-digits": lambda: paddleocr_v4(digits_only=True),
    "tesseract": tesseract,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reader", choices=READERS)
    args = parser.parse_args(argv)
    paths = [line.rstrip("\n") for line in sys.stdin if line.strip()]

    started = time.perf_counter()
    read, versions = READERS[args.reader]()
    load_seconds = time.perf_counter() - started
    texts, seconds = [], []
    for path in paths:
        image_started = time.perf_counter()
        texts.append(read(path))
        seconds.append(time.perf_counter() - image_started)
    print(json.dumps({"texts": texts, "seconds": seconds, "load_seconds": load_seconds,
                      "total_seconds": time.perf_counter() - started, "versions": versions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
