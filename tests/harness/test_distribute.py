"""train.py --distribute: mirrored over two logical CPU devices, and two workers on loopback.

Each run is a fresh `python train.py` process: TensorFlow fixes its devices and its
cluster when it starts, so neither can be set up inside the test process.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import train
from data import load_dataset

ROOT = Path(__file__).resolve().parents[2]
# A short MLP run on seven-segment digits: enough steps to learn, seconds to run.
SHORT_RUN = ["--dataset", "synthetic", "--model", "mlp", "--limit", "1200", "--epochs", "3", "--batch-size", "64"]
WORKER_TIMEOUT_S = 300


def train_process(arguments: list[str], tf_config: dict | None = None) -> subprocess.Popen:
    environment = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    if tf_config is not None:
        environment["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "train.py", *arguments], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> str:
    try:
        output, _ = process.communicate(timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"train.py did not finish within {WORKER_TIMEOUT_S} s:\n{output[-3000:]}")
    assert process.returncode == 0, output[-3000:]
    return output


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for server in sockets:
        server.bind(("127.0.0.1", 0))
    ports = [server.getsockname()[1] for server in sockets]
    for server in sockets:
        server.close()
    return ports


def assert_trained_run(run_dir: Path, replicas: int):
    """The run is complete, used `replicas` replicas, learned, and its saved model reproduces its test score."""
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert config["replicas"] == replicas
    assert metrics["test_accuracy"] > 0.5  # ten classes: chance is 0.1
    digits = load_dataset("synthetic", run_dir).limited(1200)
    model = keras.saving.load_model(run_dir / "model.keras")
    predicted = model.predict(digits.x_test.astype("float32") / 255, verbose=0).argmax(1)
    assert np.mean(predicted == digits.y_test) == pytest.approx(metrics["test_accuracy"], abs=1e-6)


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """Both distributed runs, started at once: the mirrored run and the two workers (three processes) overlap their
    start-ups and the workers' waits for each other, instead of running one after the other. Each test below
    finishes and checks its own processes; whatever is left running at the end is stopped."""
    mirrored_dir = tmp_path_factory.mktemp("mirrored") / "mirrored"
    multiworker_dir = tmp_path_factory.mktemp("multiworker") / "multiworker"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    arguments = [*SHORT_RUN, "--distribute", "multiworker", "--run-dir", str(multiworker_dir)]
    processes = {
        "mirrored": [train_process([*SHORT_RUN, "--distribute", "mirrored", "--cpu-replicas", "2",
                                    "--run-dir", str(mirrored_dir)])],
        "multiworker": [train_process(arguments, {"cluster": cluster, "task": {"type": "worker", "index": index}})
                        for index in range(2)],
    }
    yield {"mirrored": mirrored_dir, "multiworker": multiworker_dir}, processes
    for process in processes["mirrored"] + processes["multiworker"]:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_mirrored_over_two_logical_cpus(started):
    run_dirs, processes = started
    output = finish(processes["mirrored"][0])
    assert "2 replica(s)" in output
    assert_trained_run(run_dirs["mirrored"], replicas=2)


def test_two_workers_on_loopback_chief_saves(started):
    run_dirs, processes = started
    run_dir = run_dirs["multiworker"]
    outputs = [finish(worker) for worker in processes["multiworker"]]
    assert all("2 replica(s)" in output for output in outputs)
    assert_trained_run(run_dir, replicas=2)
    # Only the chief's folder (and the lock it held) exists: worker 1 wrote into a scratch folder and removed it.
    assert sorted(path.name for path in run_dir.parent.iterdir()) == [".multiworker.lock", "multiworker"]


@pytest.mark.parametrize("tf_config", [None, "not json", '{"cluster": {}}'])
def test_multiworker_without_a_valid_tf_config_is_a_user_error(tf_config, tmp_path, monkeypatch, capsys):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    run_dir = tmp_path / "run"
    assert train.main(["--dataset", "synthetic", "--dry-run", "--distribute", "multiworker",
                       "--run-dir", str(run_dir)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "TF_CONFIG" in error and len(error.splitlines()) == 1
    assert not run_dir.exists()
