"""``make ui PORT=...`` and ``make dashboard PORT=...``: the port is the user's choice,
and a taken one is one line and a non-zero exit (``mlflow ui`` alone exits 0 there).

In-process: the check itself on a port a real socket holds. End to end (``e2e``): the
Makefile targets, with the venv's stamp taken as up to date (``make -o``) so nothing is
installed.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest
from helpers.processes import REPO

from learnai.commands import port_check

STAMP = ".venv/.installed-stamp"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some server listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_is_one_line(taken_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert not port_check.is_free(taken_port)
    assert port_check.main([str(taken_port), "ui"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"learnai: port {taken_port} on 127.0.0.1 is taken (another server is listening "
        f"there); choose another: make ui PORT={taken_port + 1}"
    ]


def test_a_free_port_passes(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert port_check.main([str(port), "dashboard"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_a_port_that_is_no_port_is_refused(value: str, capsys) -> None:
    assert port_check.main([value, "ui"]) == 2
    assert capsys.readouterr().err.startswith(f"learnai: invalid value for PORT: {value!r}")


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-o", STAMP, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.e2e
@pytest.mark.parametrize("target", ["ui", "dashboard"])
def test_make_refuses_a_taken_port(target: str, taken_port: int) -> None:
    proc = _make(target, f"PORT={taken_port}")
    assert proc.returncode != 0
    assert proc.stderr.splitlines()[0] == (
        f"learnai: port {taken_port} on 127.0.0.1 is taken (another server is listening "
        f"there); choose another: make {target} PORT={taken_port + 1}"
    )
    assert "prepare" not in proc.stdout, "nothing started or created after the refusal"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "port"),
    [
        (["ui"], 5000),
        (["ui", "PORT=5123"], 5123),
        (["dashboard"], 8080),
        (["dashboard", "PORT=8123"], 8123),
    ],
)
def test_make_serves_on_the_port_given(args: list[str], port: int) -> None:
    proc = _make("-n", *args)  # what it would run
    lines = proc.stdout.splitlines()
    assert lines[0].endswith(f"port_check {port} {args[0]}")
    assert lines[-1].endswith(f"--port {port}")
