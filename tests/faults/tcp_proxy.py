"""A TCP proxy to stand between learnai and a real server: ``python tcp_proxy.py PORT
TARGET_HOST TARGET_PORT``. Freeze it (SIGSTOP) and the server seems frozen to its
clients, without stopping the server itself (which other tests share)."""

from __future__ import annotations

import socket
import sys
import threading


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            s.close()


def main() -> None:
    port, host, target = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    listener = socket.create_server(("127.0.0.1", port))
    print("listening", flush=True)
    while True:
        client, _ = listener.accept()
        server = socket.create_connection((host, target))
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


if __name__ == "__main__":
    main()
