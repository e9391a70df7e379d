"""serve.py as a user runs it: the folder written, served on 127.0.0.1, and refusals in one line."""

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import serve
from harness import atomic
from tests.conftest import one_error_line, tree_digest

ROOT = Path(__file__).resolve().parents[2]  # the repository


def test_serve_builds_the_page_and_serves_it_on_127_0_0_1(good_run, tmp_path):
    """A real process: it writes the folder, prints the address, answers there, and stops on Ctrl-C."""
    out = tmp_path / "site"
    process = subprocess.Popen([sys.executable, "serve.py", "--run-dir", str(good_run), "--port", "0", "--out",
                                str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert stdout.strip() == f"wrote {out}: run" and stderr == ""
    assert atomic.is_ours(out) and (out / "index.html").is_file()

    # Ctrl-C's default handling put back: a background shell starts its children with SIGINT ignored.
    serving = "import signal, serve, sys; signal.signal(signal.SIGINT, signal.default_int_handler); " \
              "serve.serve(serve.listen(sys.argv[1], 0))"
    process = subprocess.Popen([sys.executable, "-c", serving, str(out)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        address = line.split(" at ")[1].split("/ ")[0]
        assert address.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{address}/manifest.json", timeout=10) as response:
            assert response.headers["Content-Type"] == "application/json"
            assert [model["name"] for model in json.load(response)["models"]] == ["run"]
        with urllib.request.urlopen(f"{address}/vendor/litertjs/wasm/litert_wasm_compat_internal.wasm",
                                    timeout=10) as response:
            assert response.headers["Content-Type"] == "application/wasm"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_a_folder_the_project_did_not_write_is_refused(good_run, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "index.html").write_text("my own page")
    before = tree_digest(out)
    assert serve.main(["--run-dir", str(good_run), "--out", str(out)]) == 2
    assert one_error_line(capsys) == (f"error: refusing to replace {out}: this project did not write it (or it was "
                                      f"changed since); move it away or choose another --out.")
    assert tree_digest(out) == before


@pytest.mark.parametrize("arguments, message", [
    (["--port", "70000"], "--port 70000 is not a port (0 to 65535)"),
    (["--run-dir", "no-such-run"], "no trained model in no-such-run; run python train.py first (or pass --run-dir)."),
])
def test_bad_arguments_get_one_line(arguments, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        status = serve.main([*arguments, "--out", str(tmp_path / "site")])
        raise SystemExit(status)
    assert exit_info.value.code == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "site").exists()


def test_without_runs_it_says_to_train_first(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert serve.main(["--out", str(tmp_path / "site")]) == 2
    assert one_error_line(capsys) == ("error: no trained run in runs/; train one with python train.py (and python "
                                      "train.py --model reader --dataset svhn-numbers), or pass --run-dir.")


def test_two_runs_of_the_same_name_are_refused(good_run, tmp_path, capsys):
    other = tmp_path / "elsewhere" / "run"
    other.parent.mkdir()
    assert serve.main(["--run-dir", str(good_run), "--run-dir", str(other), "--out", str(tmp_path / "site")]) == 2
    assert "two --run-dir folders have the same name (run, run)" in one_error_line(capsys)


def test_a_port_in_use_is_said_before_building(good_run, tmp_path, monkeypatch, capsys):
    import socket

    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve.main(["--run-dir", str(good_run), "--port", str(port)]) == 2
    assert one_error_line(capsys).startswith(f"error: cannot listen on 127.0.0.1:{port} (")
    assert not (tmp_path / "runs").exists()
