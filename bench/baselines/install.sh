#!/usr/bin/env bash
# The baselines of bench/read_numbers.py, on a fresh Debian or Ubuntu machine, in one command:
#
#     bash bench/baselines/install.sh          # as root, or as a user who may sudo
#
# - Tesseract 5 and its English model from apt (the tesseract-ocr package);
# - the system libraries that opencv-python (pulled in by rapidocr) loads: libGL and GLib;
# - PaddleOCR's v4 recogniser, from the rapidocr-onnxruntime wheel pinned in requirements.txt, in a
#   virtual environment of its own, bench/baselines/.venv, apart from the project's packages.
# PYTHON picks the interpreter for that environment (default python3; the pins need 3.11 or 3.12).
# Running it again is harmless: apt and pip leave what is already there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

$sudo apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    tesseract-ocr tesseract-ocr-eng libgl1 libglib2.0-0
version="$(tesseract --version 2>&1 | head -n 1)"
case "$version" in
    "tesseract 5."*) ;;
    *) echo "error: the baseline is Tesseract 5, but apt installed '$version'; install Tesseract 5 by hand." >&2
       exit 1 ;;
esac

"$python" -m venv "$here/.venv"
"$here/.venv/bin/python" -m pip install -q -r "$here/requirements.txt"
"$here/.venv/bin/python" -c "import rapidocr_onnxruntime"  # fails here, not mid-benchmark, if a system library is missing
echo "installed: $version; rapidocr-onnxruntime in $here/.venv"
