"""A misbehaving lightningd: a unix-socket JSON-RPC server in front of a simulated node.

It speaks lightningd's framing (requests back to back, each answer a JSON object followed by a
blank line) and forwards every request to the simulator's socket, then perturbs the exchange as
the current rule says: an error answer, half an answer then a closed socket, no answer at all,
a rewritten result, the node gone for a while, or the client killed once the node has acted.
The hiveops code under test talks to it through its real transport (pyln-client, the gateway).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    n: int  # how many times this method was called before, through this proxy


@dataclass(frozen=True)
class ErrorAnswer:
    code: int
    message: str


@dataclass(frozen=True)
class CutHalfway:
    """Send the first half of the real answer, then close the socket."""


@dataclass(frozen=True)
class Hang:
    """Read the request and never answer (until the proxy stops or `seconds` pass)."""

    seconds: float = 3600.0


@dataclass(frozen=True)
class Rewrite:
    """Forward (with `params` changed by `request`), then change the result with `result`."""

    result: Callable[[Any, dict[str, Any]], Any] = lambda r, p: r
    request: Callable[[dict[str, Any]], dict[str, Any]] = lambda p: p


@dataclass(frozen=True)
class Raw:
    """Answer with these bytes instead (not JSON, say)."""

    data: bytes


@dataclass(frozen=True)
class AnswerLost:
    """Forward the call (the node acts), then close the socket without answering."""


@dataclass(frozen=True)
class KillClient:
    """Forward the call (the node acts), then SIGKILL the calling process before it hears back."""


Action = ErrorAnswer | CutHalfway | Hang | Rewrite | Raw | AnswerLost | KillClient | None
Rule = Callable[[Call], Action]


def _peer_pid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]


def bind_unix(path: Path) -> socket.socket:
    """Bind through /proc/self/fd so long pytest tmp paths fit in sun_path's 108 bytes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        sock.bind(f"/proc/self/fd/{dirfd}/{path.name}")
    finally:
        os.close(dirfd)
    return sock


def connect_unix(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        sock.connect(f"/proc/self/fd/{dirfd}/{path.name}")
    finally:
        os.close(dirfd)
    return sock


class FaultProxy:
    def __init__(self, upstream: Path, path: Path) -> None:
        self.upstream, self.path = upstream, path
        self.rule: Rule = lambda call: None
        self.calls: Counter[str] = Counter()
        self.log: list[Call] = []
        self.down_until = 0.0  # monotonic time before which connections are refused
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._conns: set[socket.socket] = set()

    def set(self, rule: Rule) -> None:
        self.rule = rule

    def clear(self) -> None:
        self.rule = lambda call: None
        self.down_until = 0.0

    def restart(self, down_s: float) -> None:
        """Drop every connection and remove the socket for `down_s`, as a restarting lightningd."""
        self.down_until = time.monotonic() + down_s
        with self._lock:
            for conn in list(self._conns):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        threading.Timer(down_s, self._listen).start()

    def start(self) -> FaultProxy:
        self._stop.clear()
        self._listen()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            for conn in list(self._conns):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> None:
        if self._stop.is_set():
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = bind_unix(self.path)
        sock.listen(32)
        sock.settimeout(0.2)
        self._sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while not self._stop.is_set() and self._sock is sock:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
        upstream = connect_unix(self.upstream)
        decoder, buffer = json.JSONDecoder(), ""
        try:
            while not self._stop.is_set():
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk.decode()
                while buffer.strip():
                    try:
                        request, end = decoder.raw_decode(buffer.lstrip())
                    except json.JSONDecodeError:
                        break
                    buffer = buffer.lstrip()[end:]
                    if not self._answer(conn, upstream, request):
                        return
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            upstream.close()
            with contextlib.suppress(OSError):
                conn.close()

    def _answer(self, conn: socket.socket, upstream: socket.socket, request: dict) -> bool:
        method = str(request.get("method"))
        params = request.get("params") or {}
        with self._lock:
            n = self.calls[method]
            self.calls[method] += 1
            call = Call(method, params if isinstance(params, dict) else {}, n)
            self.log.append(call)
        action = self.rule(call)
        rid = request.get("id")
        if isinstance(action, ErrorAnswer):
            error = {"code": action.code, "message": action.message}
            conn.sendall(
                json.dumps({"jsonrpc": "2.0", "id": rid, "error": error}).encode() + b"\n\n"
            )
            return True
        if isinstance(action, Raw):
            conn.sendall(action.data)
            return True
        if isinstance(action, Hang):
            self._stop.wait(action.seconds)
            return False
        if isinstance(action, Rewrite):
            request = {**request, "params": action.request(dict(params))}
        raw = _roundtrip(upstream, request)
        if isinstance(action, KillClient):
            os.kill(_peer_pid(conn), signal.SIGKILL)
            return False
        if isinstance(action, AnswerLost):
            return False
        if isinstance(action, CutHalfway):
            conn.sendall(raw[: len(raw) // 2])
            return False
        if isinstance(action, Rewrite):
            answer = json.loads(raw)
            if "result" in answer:
                answer["result"] = action.result(answer["result"], request["params"])
            raw = json.dumps(answer).encode() + b"\n\n"
        conn.sendall(raw)
        return True


def _roundtrip(upstream: socket.socket, request: dict) -> bytes:
    upstream.sendall(json.dumps(request).encode())
    data = bytearray()
    while not data.endswith(b"\n\n"):
        chunk = upstream.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    return bytes(data)
