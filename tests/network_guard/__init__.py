"""Fails every network connection or name lookup outside loopback, in the test process and its children.

Each blocked attempt raises :class:`NetworkBlocked` and is appended to the file named by
``$OVDET_TEST_NETWORK_LOG``, so an attempt that some library swallows is still seen (conftest checks the log after
every test). Child interpreters install the guard through ``sitecustomize.py`` in this folder, which conftest puts
on ``PYTHONPATH``.

Lookups from native code (onnxruntime's telemetry uploader calls the C library's ``getaddrinfo`` from a thread of
its own) never pass through Python's ``socket``: ``native_guard.c``, built by :func:`build_native_guard` and
preloaded into a child process (``LD_PRELOAD``), fails and logs those the same way.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
from pathlib import Path

LOG_VARIABLE = "OVDET_TEST_NETWORK_LOG"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


NATIVE_SOURCE = Path(__file__).with_name("native_guard.c")


def build_native_guard(folder: Path) -> Path | None:
    """Compile the native guard into ``folder``; ``None`` where there is no C compiler (or not on Linux)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not Path("/proc/self").exists():
        return None
    library = folder / "native_guard.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(NATIVE_SOURCE), "-ldl"], check=True)
    return library


class NetworkBlocked(RuntimeError):
    """Raised for a connection or lookup outside loopback during the tests."""


def is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    text = str(host).strip("[]").split("%")[0]
    if text.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def _block(what: str, target: object) -> None:
    message = f"{what} {target!r} outside loopback"
    log = os.environ.get(LOG_VARIABLE)
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"pid {os.getpid()}: {message}\n")
    raise NetworkBlocked(f"the tests allow no network: {message}")


def _check_address(what: str, sock: socket.socket, address: object) -> None:
    inet = sock.family in (socket.AF_INET, socket.AF_INET6)
    if inet and isinstance(address, tuple) and not is_loopback(address[0]):
        _block(what, address)


def install() -> None:
    """Patch ``socket`` once; idempotent."""
    if getattr(socket, "_ovdet_guarded", False):
        return
    socket._ovdet_guarded = True
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex
    original_sendto, original_getaddrinfo = socket.socket.sendto, socket.getaddrinfo
    original_gethostbyname, original_gethostbyname_ex = socket.gethostbyname, socket.gethostbyname_ex

    def connect(self, address):
        _check_address("connection to", self, address)
        return original_connect(self, address)

    def connect_ex(self, address):
        _check_address("connection to", self, address)
        return original_connect_ex(self, address)

    def sendto(self, data, *args):
        _check_address("datagram to", self, args[-1])
        return original_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if not is_loopback(host):
            _block("name lookup of", host)
        return original_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host):
        if not is_loopback(host):
            _block("name lookup of", host)
        return original_gethostbyname(host)

    def gethostbyname_ex(host):
        if not is_loopback(host):
            _block("name lookup of", host)
        return original_gethostbyname_ex(host)

    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
    socket.getaddrinfo, socket.gethostbyname, socket.gethostbyname_ex = getaddrinfo, gethostbyname, gethostbyname_ex
