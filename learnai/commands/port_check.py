"""``python -m learnai.commands.port_check PORT COMMAND``: refuse a port that is taken,
before ``make ui`` or ``make dashboard`` starts its server.

``mlflow ui`` on a taken port prints uvicorn's error and still exits 0, and the user is
left reading another program's page at that address; one line naming the port and the
way to choose another, with a non-zero exit, says what happened.
"""

from __future__ import annotations

import socket
import sys

HOST = "127.0.0.1"  # where `make ui` and `make dashboard` serve (both tools' default)


def is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on ``host:port`` now (a socket left in TIME_WAIT by
    a server that just stopped does not count as taken: servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[0].isdigit() or not 0 < int(argv[0]) < 65536:
        print(
            f"learnai: invalid value for PORT: {argv[0] if argv else ''!r} (1..65535)",
            file=sys.stderr,
        )
        return 2
    port, command = int(argv[0]), argv[1]
    if is_free(port):
        return 0
    print(
        f"learnai: port {port} on {HOST} is taken (another server is listening there); "
        f"choose another: make {command} PORT={port + 1}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
