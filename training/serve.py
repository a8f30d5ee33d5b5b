"""``python -m training.serve --logdir runs/demo``: TensorBoard on localhost at a free port, printing the
URL of the NAS tab, in the foreground until Ctrl-C."""
from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence


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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.serve", description=__doc__)
    p.add_argument("--logdir", default="runs/demo")
    p.add_argument("--port", type=int, default=None, help="default: the first free port from 6006 on")
    args = p.parse_args(argv)
    port = args.port or free_port()
    signal.signal(signal.SIGTERM, _interrupt)  # stopped by a supervisor: take TensorBoard down too
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", args.logdir, "--port", str(port), "--host", "localhost"]
    log = tempfile.TemporaryFile("w+")  # TensorBoard's own chatter, shown only if it fails to start
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        while not _listening(port):
            if server.poll() is not None:
                log.seek(0)
                print(f"TensorBoard exited with code {server.returncode}:\n{log.read()}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"TensorBoard is serving {args.logdir}. NAS tab: http://localhost:{port}/#nas  (Ctrl-C to stop)", flush=True)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
