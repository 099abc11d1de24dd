"""lightningd's JSON-RPC over a unix socket: framing, filters, errors and fault injection.

Requests are JSON objects written back to back on a connection; each answer is a JSON object
followed by a blank line ("\n\n"), which is what pyln-client reads up to.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lnsim.simerrors import SimRpcError

Handler = Callable[[dict[str, Any]], Any]


class RawResult(str):
    """A result already serialised to JSON (listforwards pages are large and mostly cached)."""

    def parsed(self) -> Any:
        return json.loads(self)


@dataclass
class Reply:
    """What a call answers: a result (or a pre-serialised one), an error, a cut-off body, or
    nothing at all (the connection drops)."""

    kind: Literal["result", "raw", "error", "malformed", "drop"]
    body: Any = None
    fault: Fault | None = None


@dataclass
class Fault:
    error_rate: float = 0.0
    error_code: int = -5
    error_message: str = "lightningd is shutting down"
    latency_s: float = 0.0
    disconnect: bool = False
    malformed: bool = False
    msat_strings: bool = False
    drop_optional: bool = False
    zero_balances: bool = False
    count: int | None = None  # apply to the next N calls only
    # REST only: a proxy's HTML page instead of clnrest, or a body cut short mid-transfer.
    html: bool = False
    cut_body: bool = False


class Faults:
    """Per node, per method (or '*') fault settings, set from tests or the control socket."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: dict[tuple[str, str], Fault] = {}
        self._lock = threading.Lock()
        self.rng = random.Random(seed)

    def set(self, node: str, method: str = "*", **options: Any) -> None:
        with self._lock:
            self._faults[(node, method)] = Fault(**options)

    def clear(self, node: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._faults if node is None or k[0] == node]:
                del self._faults[key]

    def take(self, node: str, method: str) -> Fault | None:
        with self._lock:
            for key in ((node, method), (node, "*")):
                fault = self._faults.get(key)
                if fault is None:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count < 0:
                        del self._faults[key]
                        continue
                return fault
        return None


def apply_filter(value: Any, flt: Any) -> Any:
    """CLN's `filter`: keep only keys set to true; arrays apply the filter to each element."""
    if flt is True or not isinstance(flt, dict):
        return value
    if isinstance(value, list):
        return [apply_filter(v, flt) for v in value]
    if isinstance(value, dict):
        return {k: apply_filter(v, flt[k]) for k, v in value.items() if k in flt}
    return value


def msat_strings(value: Any) -> Any:
    """Render every *_msat integer in the pre-v23.05 "123msat" form."""
    if isinstance(value, dict):
        return {
            k: f"{v}msat"
            if k.endswith("_msat") and isinstance(v, int) and not isinstance(v, bool)
            else msat_strings(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [msat_strings(v) for v in value]
    return value


class NodeServer:
    """One simulated lightningd's socket."""

    def __init__(
        self,
        name: str,
        path: Path,
        handlers: dict[str, Handler],
        faults: Faults,
        params_order: dict[str, list[str]],
    ) -> None:
        self.name, self.path, self.handlers, self.faults = name, path, handlers, faults
        self.params_order = params_order
        self.calls: Counter[str] = Counter()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dirfd = os.open(self.path.parent, os.O_RDONLY)
        try:  # /proc/self/fd keeps long (pytest tmp) paths under the 108-byte sun_path limit
            sock.bind(f"/proc/self/fd/{dirfd}/{self.path.name}")
        finally:
            os.close(dirfd)
        sock.listen(64)
        sock.settimeout(0.2)
        self._sock, self._stop = sock, threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"rpc-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._sock:
            self._sock.close()
        self._sock = None
        if self.path.exists():
            self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk.decode()
                while buffer.strip():
                    try:
                        request, end = decoder.raw_decode(buffer.lstrip())
                    except json.JSONDecodeError:
                        break  # incomplete: wait for more bytes
                    buffer = buffer.lstrip()[end:]
                    if not self._answer(conn, request):
                        return

    def _answer(self, conn: socket.socket, request: Any) -> bool:
        if not isinstance(request, dict) or "method" not in request:
            self._send(
                conn,
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32600, "message": "Invalid request"},
                },
            )
            return True
        rid = request.get("id")
        reply = self.dispatch(str(request["method"]), request.get("params", {}), request)
        if reply.kind == "drop":
            return False
        if reply.kind == "malformed":
            conn.sendall(
                b'{"jsonrpc": "2.0", "id": '
                + json.dumps(rid).encode()
                + b', "result": {"truncated\n\n'
            )
        elif reply.kind == "raw":
            self._send_raw(conn, rid, reply.body)
        elif reply.kind == "error":
            self._send(conn, {"jsonrpc": "2.0", "id": rid, "error": reply.body})
        else:
            self._send(conn, {"jsonrpc": "2.0", "id": rid, "result": reply.body})
        return True

    def dispatch(self, method: str, params: Any, request: dict[str, Any]) -> Reply:
        """One call, faults applied: what both the socket and the REST server answer."""
        self.calls[method] += 1
        fault = self.faults.take(self.name, method)
        reply = self._reply(method, params, request, fault)
        reply.fault = fault
        return reply

    def _reply(
        self, method: str, params: Any, request: dict[str, Any], fault: Fault | None
    ) -> Reply:
        if fault:
            if fault.latency_s:
                time.sleep(fault.latency_s)
            if self._stop.is_set() or fault.disconnect:
                return Reply("drop")
            if fault.malformed:
                return Reply("malformed")
            if fault.error_rate and self.faults.rng.random() < fault.error_rate:
                return Reply("error", {"code": fault.error_code, "message": fault.error_message})
        try:
            handler = self.handlers.get(method)
            if handler is None:
                raise SimRpcError(-32601, f"Unknown command '{method}'")
            result = handler(self._params(method, params))
            if isinstance(result, RawResult):
                if fault is None and "filter" not in request:
                    return Reply("raw", result)
                result = result.parsed()
            if fault and fault.zero_balances and method == "listpeerchannels":
                for ch in result["channels"]:
                    for key in ("to_us_msat", "total_msat", "spendable_msat", "receivable_msat"):
                        if key in ch:
                            ch[key] = 0
            if fault and fault.drop_optional:
                result = drop_optional(method, result)
            if fault and fault.msat_strings:
                result = msat_strings(result)
            if "filter" in request:
                result = apply_filter(result, request["filter"])
            return Reply("result", result)
        except SimRpcError as exc:
            return Reply("error", exc.to_json())
        except (TypeError, ValueError, KeyError) as exc:
            return Reply("error", {"code": -32602, "message": f"{method}: {exc}"})

    def _params(self, method: str, params: Any) -> dict[str, Any]:
        if isinstance(params, dict):
            return params
        if isinstance(params, list):
            order = self.params_order.get(method, [])
            if len(params) > len(order):
                raise SimRpcError(-32602, f"{method}: too many parameters")
            return dict(zip(order, params, strict=False))
        raise SimRpcError(-32602, "params must be an object or an array")

    @staticmethod
    def _send_raw(conn: socket.socket, rid: Any, result: str) -> None:
        head = '{"jsonrpc": "2.0", "id": ' + json.dumps(rid) + ', "result": '
        with contextlib.suppress(OSError):
            conn.sendall((head + result + "}\n\n").encode())

    @staticmethod
    def _send(conn: socket.socket, response: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(response).encode() + b"\n\n")


OPTIONAL_EXTRAS = {
    "listpeerchannels": (
        "spendable_msat",
        "receivable_msat",
        "updates",
        "alias",
        "in_payments_offered",
        "in_offered_msat",
        "out_payments_offered",
        "out_offered_msat",
        "last_stable_connection",
        "minimum_htlc_out_msat",
        "maximum_htlc_out_msat",
    ),
    "listforwards": ("style", "in_htlc_id", "out_htlc_id", "updated_index"),
    "getinfo": ("our_features", "binding"),
}


def drop_optional(method: str, result: Any) -> Any:
    """Omit optional fields, as older or differently configured nodes do."""
    keys = OPTIONAL_EXTRAS.get(method, ())
    if not keys:
        return result

    def strip(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in keys}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return strip(result)
