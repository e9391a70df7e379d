"""Your trained models in a web page: read a number from a photo, draw a digit and watch every layer answer.

    python serve.py                                   # the default runs, at http://127.0.0.1:8000/
    python serve.py --run-dir runs/convnet_mnist --run-dir runs/reader_svhn-numbers --port 8000
    python serve.py --out site/                       # only write the folder, for any static host

The page (serving/webapp.py builds its folder, serving/web/ holds its code) runs
the runs' LiteRT files in the browser with LiteRT.js: after one visit it works
offline, and a photo never leaves the device. It is served on 127.0.0.1 only;
a phone reaches it through an HTTPS host (README, "The web page").
"""

import functools
import http.server
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import runs
from harness.cli import ArgumentParser, entry_point
from harness.errors import UserError

DEFAULT_OUT = runs.RUNS_ROOT / "web"
HOST = "127.0.0.1"  # this machine only: the page is for the person at it (a phone goes through a host)


def default_runs() -> list[Path]:
    """The handwriting classifier predict.py uses, and the street number reader, those of them trained."""
    found = [run for run in (runs.default_digit_run(), runs.default_run_dir("reader", "svhn-numbers"))
             if runs.is_run(run)]
    if not found:
        raise UserError(f"no trained run in {runs.RUNS_ROOT}/; train one with python train.py (and python train.py "
                        f"--model reader --dataset svhn-numbers), or pass --run-dir.")
    return found


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the types the page needs (ES modules, WebAssembly, the app manifest), no request log."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript",
                      ".wasm": "application/wasm", ".webmanifest": "application/manifest+json",
                      ".tflite": "application/octet-stream"}

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


class PageServer(http.server.ThreadingHTTPServer):
    """The folder's server: a browser that stops a download (a reload, a closed tab) is not an error."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def listen(folder: Path, port: int) -> PageServer:
    """A server for `folder` bound to HOST:port (0: any free port), not yet serving; UserError if it cannot bind."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    try:
        return PageServer((HOST, port), handler)
    except OSError as error:
        raise UserError(f"cannot listen on {HOST}:{port} ({error.strerror or error}); choose another --port.") from None


def serve(server: PageServer) -> None:
    """Serve until interrupted (Ctrl-C), printing the page's address."""
    with server:
        print(f"serving {server.RequestHandlerClass.keywords['directory']} at "
              f"http://{HOST}:{server.server_address[1]}/ (read a number: #read, draw a digit: #draw); "
              f"Ctrl-C stops", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


@dataclass(frozen=True)
class ServeConfig:
    run_dirs: tuple[Path, ...]  # the runs the page holds (the default ones when none is named)
    out: Path  # the page's folder
    port: int | None  # where to serve it on HOST; None: only write the folder (--out)
    data_dir: Path | None  # replaces the runs' recorded data folder (their training images are surveyed)


def parse_args(argv: list[str] | None) -> ServeConfig:
    parser = ArgumentParser(description="Build the web page for trained runs (LiteRT.js in the browser, offline "
                                        "after one visit) and serve it on 127.0.0.1, or only write its folder.")
    parser.add_argument("--run-dir", type=Path, action="append",
                        help="a run written by train.py, repeatable (default: "
                             f"{runs.default_digit_run()} and {runs.default_run_dir('reader', 'svhn-numbers')}, "
                             f"those trained)")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--out", type=Path,
                        help=f"only write the page's folder here, for any static host (default: build into "
                             f"{DEFAULT_OUT} and serve it)")
    parser.add_argument("--data-dir", type=Path, help="folder with the data files (default: each run's)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a port (0 to 65535)")
    return ServeConfig(run_dirs=tuple(args.run_dir or ()), out=args.out or DEFAULT_OUT,
                       port=None if args.out else args.port, data_dir=args.data_dir)


@entry_point
def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    from harness.quiet_keras import keras  # noqa: F401 (first: TensorFlow loads here, without its chatter)
    from serving import webapp

    # A port in use is said before the minute of building.
    server = None if config.port is None else listen(config.out, config.port)
    manifest = webapp.build(list(config.run_dirs) or default_runs(), config.out, config.data_dir)
    print(f"wrote {config.out}: {', '.join(model['name'] for model in manifest['models'])}", flush=True)
    if server is not None:
        serve(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
