"""lightningd's JSON-RPC on its unix socket, through pyln-client, with a timeout."""

from __future__ import annotations

import json
from typing import Any

from pyln.client import LightningRpc, RpcError

from models.settings import NodeConfig
from tasks.node_errors import MalformedResponse, NodeUnreachable, Transient, rpc_error


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


class SocketTransport:
    def __init__(self, node: NodeConfig, timeout_s: float) -> None:
        assert node.rpc_socket is not None
        self.node, self.timeout_s = node, timeout_s
        self._rpc = _TimeoutRpc(str(node.rpc_socket), timeout_s)

    def close(self) -> None:
        pass

    def call(self, method: str, params: dict[str, Any], filter: dict[str, Any] | None) -> Any:
        """The raw result; raises NodeError (final) or Transient (worth a retry)."""
        name = self.node.name
        try:
            return self._rpc.call(method, params, filter=filter)
        except RpcError as exc:
            error = exc.error
            if not isinstance(error, dict):
                # pyln reports a dropped connection as a bare string.
                raise Transient(NodeUnreachable(name, method, f"connection lost: {error}")) from exc
            raise rpc_error(name, method, error) from exc
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise Transient(
                NodeUnreachable(
                    name,
                    method,
                    f"cannot reach lightningd at {self.node.rpc_socket} ({exc.strerror}); "
                    f"is the node running, and is nodes[{name}].rpc_socket right?",
                ),
                sent=False,
            ) from exc
        except TimeoutError as exc:
            raise Transient(
                NodeUnreachable(name, method, f"no answer within {self.timeout_s}s (rpc.timeout_s)")
            ) from exc
        except (ConnectionError, OSError) as exc:
            raise Transient(NodeUnreachable(name, method, f"connection error: {exc}")) from exc
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise Transient(MalformedResponse(name, method, f"malformed response: {exc}")) from exc
