"""Wall time of `python visualize.py --layer conv2` and `--report`, start-up included, over several runs.

    python bench/visualize_timing.py                          # runs/convnet_mnist, 5 and 3 runs
    python bench/visualize_timing.py --layer-runs 3 --report-runs 1

Each command runs as a fresh process (Python and TensorFlow start-up count, as
for a user) on a copy of the run in a temporary folder, so the run's own
figures/ is left alone. Prints every time, then the median and range per
command, with the machine's load average: on a shared machine other work
inflates the times, so report the median beside the load it was measured under.
Targets: --layer conv2 under 20 s, --report under 3 minutes.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere: the project's packages sit at the root

from harness.cli import ArgumentParser, entry_point, positive_int
from harness import runs

TARGETS = {"--layer conv2": 20.0, "--report": 180.0}  # seconds


@dataclass(frozen=True)
class TimingConfig:
    run_dir: Path
    layer_runs: int
    report_runs: int


def parse_args(argv: list[str] | None) -> TimingConfig:
    parser = ArgumentParser(description="Time visualize.py's --layer conv2 and --report, start-up included.")
    parser.add_argument("--run-dir", type=Path, default=ROOT / runs.default_run_dir("convnet", "mnist"),
                        help="trained run to draw (copied; left untouched)")
    parser.add_argument("--layer-runs", type=positive_int, default=5, help="timed runs of --layer conv2")
    parser.add_argument("--report-runs", type=positive_int, default=3, help="timed runs of --report")
    args = parser.parse_args(argv)
    return TimingConfig(args.run_dir, args.layer_runs, args.report_runs)


def timed(arguments: list[str]) -> float:
    """Seconds of wall time for one `python visualize.py ARGUMENTS` process; fails loudly if it fails."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "visualize.py"), *arguments], cwd=ROOT,
                            capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"visualize.py {' '.join(arguments)} failed:\n{result.stderr[-2000:]}")
    return seconds


@entry_point
def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    runs.require_run(config.run_dir)
    with tempfile.TemporaryDirectory(prefix="visualize-timing-") as scratch:
        run_dir = Path(scratch) / config.run_dir.name
        run_dir.mkdir()
        for name in (runs.MODEL_FILE, runs.CONFIG_FILE, runs.METRICS_FILE):
            if (config.run_dir / name).is_file():
                shutil.copy2(config.run_dir / name, run_dir / name)
        print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{value:.1f}' for value in os.getloadavg())} at start")
        for label, count in (("--layer conv2", config.layer_runs), ("--report", config.report_runs)):
            times = []
            for number in range(1, count + 1):
                times.append(timed([*label.split(), "--run-dir", str(run_dir)]))
                print(f"visualize.py {label}: run {number}: {times[-1]:.1f} s", flush=True)
            verdict = "within" if statistics.median(times) < TARGETS[label] else "OVER"
            print(f"visualize.py {label}: median {statistics.median(times):.1f} s over {count} runs "
                  f"(range {min(times):.1f}-{max(times):.1f} s); {verdict} the {TARGETS[label]:.0f} s target")
        print(f"load average {' '.join(f'{value:.1f}' for value in os.getloadavg())} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
