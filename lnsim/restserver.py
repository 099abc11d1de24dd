"""clnrest for a simulated node: HTTPS on loopback, `POST /v1/<method>`, runes checked.

Answers as clnrest does: 201 and the result as JSON; 403 {code 1501} without a `Rune` header,
401 with checkrune's error when the rune does not allow the call, 404 for an unknown method,
500 with lightningd's JSON-RPC error. Faults `html` (a proxy's page) and `cut_body` (a body
shorter than its Content-Length) exist only here.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lnsim.rpcserver import NodeServer
from lnsim.simerrors import SimRpcError
from lnsim.simrunes import RUNE_NOT_AUTHORIZED, NodeRunes
from lnsim.simtls import CertSet

PROXY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n"


class RestServer:
    def __init__(
        self, node: NodeServer, runes: NodeRunes, certs: CertSet, host: str = "127.0.0.1"
    ) -> None:
        self.node, self.runes, self.certs, self.host = node, runes, certs, host
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certs.server, self.certs.server_key)
        handler = type("Handler", (_Handler,), {"rest": self})
        httpd = ThreadingHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self.port = httpd.server_address[1]  # kept: a restarted node listens where it did
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def answer(self, method: str, rune: str | None, body: bytes) -> tuple[int, bytes, str, bool]:
        """(status, body, content type, cut short?) for one POST."""
        try:
            params: Any = json.loads(body) if body.strip() else {}
            if not isinstance(params, dict):
                raise ValueError("the body must be a JSON object of named parameters")
        except (ValueError, UnicodeDecodeError) as exc:
            return _json(500, {"code": None, "message": f"Could not parse JSON request: {exc}"})
        if rune is None:
            return _json(
                403, {"code": RUNE_NOT_AUTHORIZED, "message": "Not authorized: Missing rune"}
            )
        try:
            self.runes.check(rune, method, params)
        except SimRpcError as exc:
            return _json(401, exc.to_json())
        reply = self.node.dispatch(method, params, {})
        fault = reply.fault
        if reply.kind == "drop":
            return 0, b"", "", True
        if fault is not None and fault.html:
            return 200, PROXY_PAGE, "text/html", False
        if reply.kind == "malformed":
            return 201, b'{"truncated', "application/json", False
        if reply.kind == "error":
            status = 404 if reply.body.get("code") == -32601 else 500
            return _json(status, reply.body)
        text = reply.body if reply.kind == "raw" else json.dumps(reply.body)
        status, data, kind, _ = 201, text.encode(), "application/json", False
        return status, data, kind, fault is not None and fault.cut_body


def _json(status: int, body: dict[str, Any]) -> tuple[int, bytes, str, bool]:
    return status, json.dumps(body).encode(), "application/json", False


class _Handler(BaseHTTPRequestHandler):
    rest: RestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet, and never a header

    def setup(self) -> None:
        super().setup()
        # headers and body go out as two writes: without this, Nagle + delayed ACK add 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not self.path.startswith("/v1/") or len(self.path) <= 4:
            self._send(404, b'{"code": null, "message": "Not Found"}', "application/json")
            return
        method = self.path[len("/v1/") :].split("?")[0]
        status, data, kind, cut = self.rest.answer(method, self.headers.get("Rune"), body)
        if status == 0:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        self._send(status, data, kind, cut)

    def do_GET(self) -> None:
        self._send(404, b'{"code": null, "message": "Not Found"}', "application/json")

    def _send(self, status: int, data: bytes, kind: str, cut: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.wfile.write(data)
