"""The node gateway: every RPC to a CLN node goes through here.

A node is reached on its unix socket (pyln-client) or through clnrest (httpx); either way this
adds what production needs: a timeout, retries with backoff and jitter on transient failures
only, the same error classes, and errors that name the node, the method, the code and the fix.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from engine.backoff import backoff_delays_s
from models.settings import ConfigError, NodeConfig, RpcConfig
from tasks.node_errors import (
    RETRYABLE_CODES,
    UNKNOWN_COMMAND,
    MalformedResponse,
    NodeError,
    NodeUnreachable,
    RuneRejected,
    Transient,
)
from tasks.rest_transport import RestTransport
from tasks.socket_transport import SocketTransport

log = logging.getLogger("hiveops.gateway")

T = TypeVar("T")

__all__ = [
    "RETRYABLE_CODES",
    "UNKNOWN_COMMAND",
    "MalformedResponse",
    "NodeError",
    "NodeGateway",
    "NodeUnreachable",
    "RuneRejected",
]


class Transport(Protocol):
    def call(self, method: str, params: dict[str, Any], filter: dict[str, Any] | None) -> Any: ...

    def close(self) -> None: ...


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
        self._transport: Transport | None = None
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.calls = 0

    def transport(self) -> Transport:
        """Built on first use, so a bad rune_file or ca_cert fails the call that needs it."""
        if self._transport is None:
            try:
                if self.node.rest_url is not None:
                    self._transport = RestTransport(self.node, self.rpc_config.timeout_s)
                else:
                    self._transport = SocketTransport(self.node, self.rpc_config.timeout_s)
            except ConfigError as exc:
                raise NodeError(self.node.name, "connect", str(exc)) from exc
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

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
            except Transient as transient:
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
        raw = self.transport().call(method, params or {}, filter)
        try:
            return parse(raw)
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            raise Transient(
                MalformedResponse(
                    name, method, f"response does not match the expected shape: {_first_line(exc)}"
                )
            ) from exc


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
