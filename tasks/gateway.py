"""The node gateway: every RPC to a CLN node goes through here.

pyln-client does the protocol; this adds what production needs: a socket timeout, retries with
backoff and jitter on transient failures only, and errors that name the node, the method, the
code and the fix.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from pyln.client import LightningRpc, RpcError

from engine.backoff import backoff_delays_s
from models.cln import METHOD_SINCE
from models.settings import NodeConfig, RpcConfig

log = logging.getLogger("hiveops.gateway")

T = TypeVar("T")

# lightningd's transient codes: plugin died (-4), shutting down (-5); -32603 internal error.
RETRYABLE_CODES = frozenset({-4, -5, -32603})
UNKNOWN_COMMAND = -32601


class NodeError(RuntimeError):
    """A node call that failed for good; the message is meant for an operator."""

    def __init__(self, node: str, method: str, message: str, code: int | None = None) -> None:
        self.node, self.method, self.code = node, method, code
        code_part = f" (code {code})" if code is not None else ""
        super().__init__(f"node {node}: {method} failed{code_part}: {message}")


class NodeUnreachable(NodeError):
    pass


class MalformedResponse(NodeError):
    pass


class _TimeoutRpc(LightningRpc):
    """LightningRpc with a socket timeout: pyln-client has none and would hang forever."""

    def __init__(self, socket_path: str, timeout_s: float) -> None:
        super().__init__(socket_path)
        self.timeout_s = timeout_s

    def _writeobj(self, sock: Any, obj: dict[str, Any]) -> None:
        if getattr(sock, "sock", None) is not None:
            sock.sock.settimeout(self.timeout_s)
        super()._writeobj(sock, obj)

    def _readobj(self, sock: Any, buff: bytes = b"") -> tuple[Any, bytes]:
        """pyln's reader re-splits the whole buffer after every recv (quadratic in the size of
        a listforwards page); this one searches only the newly received bytes for the end."""
        chunks = bytearray(buff)
        searched = 0
        while True:
            end = chunks.find(b"\n\n", max(0, searched - 1))
            if end >= 0:
                obj, _ = json.JSONDecoder().raw_decode(chunks[:end].decode("UTF-8"))
                return obj, bytes(chunks[end + 2 :])
            searched = len(chunks)
            received = sock.recv(max(65_536, len(chunks)))
            if not received:
                return {"error": "Connection to RPC server lost."}, bytes(chunks)
            chunks += received


class _Transient(Exception):
    """A failure worth retrying; `sent` when the node may have received (and acted on) it."""

    def __init__(self, error: NodeError, *, sent: bool = True) -> None:
        self.error, self.sent = error, sent


class NodeGateway:
    def __init__(
        self,
        node: NodeConfig,
        rpc: RpcConfig,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.node = node
        self.rpc_config = rpc
        self._rpc = _TimeoutRpc(str(node.rpc_socket), rpc.timeout_s)
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.calls = 0

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        filter: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        return self.call_parsed(
            method, lambda raw: raw, params, filter=filter, idempotent=idempotent
        )

    def call_parsed(
        self,
        method: str,
        parse: Callable[[dict[str, Any]], T],
        params: dict[str, Any] | None = None,
        *,
        filter: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> T:
        """Call and parse, retrying transport failures, transient codes and bad payloads.

        A call that is not `idempotent` (it starts something, like sling-once) is retried only
        when the node cannot have acted on it (no connection, an error answer); after a
        timeout or a lost answer its outcome is unknown and the caller must find out.
        """
        delays = backoff_delays_s(
            self.rpc_config.retries,
            self.rpc_config.backoff_base_s,
            self.rpc_config.backoff_max_s,
            self._rng,
        )
        attempt = 0
        while True:
            try:
                return self._attempt(method, parse, params, filter)
            except _Transient as transient:
                if not idempotent and transient.sent:
                    raise transient.error from transient
                if attempt >= len(delays):
                    err = transient.error
                    raise type(err)(
                        err.node,
                        err.method,
                        f"{_message(err)} (gave up after {attempt + 1} attempts)",
                        err.code,
                    ) from transient
                log.warning("%s; retrying in %.2fs", transient.error, delays[attempt])
                self._sleep(delays[attempt])
                attempt += 1

    def _attempt(
        self,
        method: str,
        parse: Callable[[dict[str, Any]], T],
        params: dict[str, Any] | None,
        filter: dict[str, Any] | None,
    ) -> T:
        name = self.node.name
        self.calls += 1
        try:
            raw = self._rpc.call(method, params or {}, filter=filter)
        except RpcError as exc:
            error = exc.error
            if not isinstance(error, dict):
                # pyln reports a dropped connection as a bare string.
                raise _Transient(
                    NodeUnreachable(name, method, f"connection lost: {error}")
                ) from exc
            code = error.get("code")
            message = str(error.get("message", error))
            if code in RETRYABLE_CODES:
                raise _Transient(NodeError(name, method, message, code), sent=False) from exc
            if code == UNKNOWN_COMMAND:
                message += f" ({missing_method_hint(method)})"
            raise NodeError(name, method, message, code) from exc
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise _Transient(
                NodeUnreachable(
                    name,
                    method,
                    f"cannot reach lightningd at {self.node.rpc_socket} ({exc.strerror}); "
                    f"is the node running, and is nodes[{name}].rpc_socket right?",
                ),
                sent=False,
            ) from exc
        except TimeoutError as exc:
            raise _Transient(
                NodeUnreachable(
                    name, method, f"no answer within {self.rpc_config.timeout_s}s (rpc.timeout_s)"
                )
            ) from exc
        except (ConnectionError, OSError) as exc:
            raise _Transient(NodeUnreachable(name, method, f"connection error: {exc}")) from exc
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise _Transient(MalformedResponse(name, method, f"malformed response: {exc}")) from exc
        try:
            return parse(raw)
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            raise _Transient(
                MalformedResponse(
                    name, method, f"response does not match the expected shape: {_first_line(exc)}"
                )
            ) from exc


def missing_method_hint(method: str) -> str:
    since = METHOD_SINCE.get(method)
    if since:
        return f"{method} needs CLN {since} or later; upgrade lightningd"
    return "is the plugin that provides it installed and running?"


def _message(err: NodeError) -> str:
    text = str(err)
    prefix = f"node {err.node}: {err.method} failed"
    text = text.removeprefix(prefix)
    if err.code is not None:
        text = text.removeprefix(f" (code {err.code})")
    return text.removeprefix(": ")


def _first_line(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors()[:3]:
            parts.append(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
        text = "; ".join(parts)
    return text.splitlines()[0] if text else type(exc).__name__
