"""``python -m training.serve --logdir runs/demo``: TensorBoard on localhost at a free port, printing the
URL of the NAS tab, in the foreground until Ctrl-C."""
from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple


def free_port(start: int = 6006, tries: int = 100) -> int:
    """The first port from ``start`` on that can be bound on localhost."""
    for port in range(start, start + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("localhost", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}..{start + tries - 1}")


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("localhost", port)) == 0


class Served(NamedTuple):
    url: str  # http://localhost:PORT
    process: subprocess.Popen


@contextlib.contextmanager
def tensorboard(logdir: str, port: int | None = None) -> Iterator[Served]:
    """TensorBoard serving ``logdir`` on localhost (``port``: default the first free one from 6006 on),
    yielded once it listens; stopped on exit. Its own output is shown only if it fails to start."""
    port = port or free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--port", str(port), "--host", "localhost"]
    log = tempfile.TemporaryFile("w+")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        while not _listening(port):
            if server.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"TensorBoard exited with code {server.returncode}:\n{log.read()}")
            time.sleep(0.2)
        yield Served(f"http://localhost:{port}", server)
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.serve", description=__doc__)
    p.add_argument("--logdir", default="runs/demo")
    p.add_argument("--port", type=int, default=None, help="default: the first free port from 6006 on")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stopped by a supervisor: take TensorBoard down too
    try:
        with tensorboard(args.logdir, args.port) as served:
            print(f"TensorBoard is serving {args.logdir}. NAS tab: {served.url}/#nas  (Ctrl-C to stop)", flush=True)
            served.process.wait()
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
