"""A node's JSON-RPC through CLN's REST plugin (clnrest): `POST /v1/<method>`, the method's
parameters as a JSON object, a `Rune` header, TLS pinned to the node's own CA.

clnrest answers 201 with the result; 401 when checkrune refuses the rune, 403 when it is
missing, 404 for an unknown method, 500 with lightningd's JSON-RPC error for a failed call.
It has no `filter`: results arrive whole and the models ignore what they do not read.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx

from models.runes import createrune_command, rune_flags
from models.settings import NodeConfig
from tasks.node_errors import (
    RUNE_BLACKLISTED,
    RUNE_CODES,
    RUNE_NOT_PERMITTED,
    MalformedResponse,
    NodeError,
    NodeUnreachable,
    RuneRejected,
    Transient,
    rpc_error,
)

PROXY_STATUSES = frozenset({502, 503, 504})


def tls_context(node: NodeConfig) -> ssl.SSLContext:
    """Trust only the node's CA when ca_cert is set (clnrest's self-signed ca.pem), the
    system's otherwise (a proxy with a public certificate); host names are always checked."""
    if node.ca_cert is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(node.ca_cert))
    except (OSError, ssl.SSLError) as exc:
        raise NodeUnreachable(
            node.name,
            "connect",
            f"ca_cert {node.ca_cert} is not a readable PEM certificate ({exc}); copy the "
            "node's clnrest ca.pem there",
        ) from exc


def rune_fix(method: str) -> str:
    flags = rune_flags(method)
    if flags is None:
        return "no hiveops mode needs it"
    mode = "act" if "act" in flags else "read"
    command = createrune_command(mode, "--advisor-exec" in flags)  # type: ignore[arg-type]
    return f"make the right rune on the node's host with `hiveops rune {flags}`: {command}"


class RestTransport:
    def __init__(self, node: NodeConfig, timeout_s: float) -> None:
        assert node.rest_url is not None
        self.node, self.timeout_s = node, timeout_s
        self._rune = node.load_rune()
        self._client = httpx.Client(
            base_url=node.rest_url,
            verify=tls_context(node) if node.rest_url.startswith("https") else False,
            timeout=httpx.Timeout(timeout_s),
            trust_env=False,  # a stray HTTPS_PROXY must not receive the rune
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __del__(self) -> None:  # tasks drop their gateway without closing it
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()

    def call(self, method: str, params: dict[str, Any], filter: dict[str, Any] | None) -> Any:
        """The raw result; raises NodeError (final) or Transient (worth a retry)."""
        name, url = self.node.name, self.node.rest_url
        try:
            response = self._client.post(
                f"/v1/{method}",
                json=params,
                headers={"Rune": self._rune.get_secret_value(), "Accept": "application/json"},
            )
        except httpx.ConnectError as exc:
            raise self._connect_error(method, exc) from exc
        except httpx.TimeoutException as exc:
            raise Transient(
                NodeUnreachable(name, method, f"no answer within {self.timeout_s}s (rpc.timeout_s)")
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise Transient(
                MalformedResponse(name, method, f"clnrest at {url} cut the answer short: {exc}")
            ) from exc
        except httpx.HTTPError as exc:
            raise Transient(NodeUnreachable(name, method, f"HTTP error: {exc}")) from exc
        return self._result(method, response)

    def _connect_error(self, method: str, exc: httpx.ConnectError) -> NodeError | Transient:
        name, url = self.node.name, self.node.rest_url
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            if "mismatch" in text or "match" in text:
                why = (
                    f"the certificate at {url} is not for that host name ({text}); use a name "
                    "the certificate lists in rest_url (clnrest's own lists localhost, cln and "
                    "clnrest-host), or regenerate it for this name"
                )
            else:
                pin = f"ca_cert {self.node.ca_cert}" if self.node.ca_cert else "the system CAs"
                why = (
                    f"the certificate at {url} is not signed by {pin} ({text}); set "
                    f"nodes[{name}].ca_cert to the node's clnrest ca.pem"
                )
            return NodeUnreachable(name, method, f"TLS refused: {why}")
        if isinstance(exc.__cause__, ssl.SSLError) or "SSL" in text:
            return NodeUnreachable(
                name,
                method,
                f"TLS handshake with {url} failed ({text}); is clnrest-protocol https and "
                "rest_url https://?",
            )
        return Transient(
            NodeUnreachable(
                name,
                method,
                f"cannot reach clnrest at {url} ({text}); is the node up, clnrest-port set, "
                f"and the port open to this host? (nodes[{name}].rest_url)",
            ),
            sent=False,
        )

    def _result(self, method: str, response: httpx.Response) -> Any:
        name, url, status = self.node.name, self.node.rest_url, response.status_code
        if status in PROXY_STATUSES:
            raise Transient(
                NodeUnreachable(name, method, f"{url} answered HTTP {status} (proxy or gateway)")
            )
        try:
            body = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            kind = response.headers.get("content-type", "no content-type")
            problem = MalformedResponse(
                name,
                method,
                f"{url} answered HTTP {status} with {kind}, not clnrest's JSON "
                f"({_excerpt(response.content)}); is rest_url the clnrest port and not a proxy "
                "or web page?",
            )
            if "html" in kind:
                raise problem from exc
            raise Transient(problem) from exc
        if status in (200, 201):
            return body
        error = body if isinstance(body, dict) else {"message": str(body)}
        code = error.get("code")
        if status in (401, 403) or code in RUNE_CODES:
            raise self._rune_error(method, error)
        if status == 404 and code is None:
            raise NodeError(
                name, method, f"{url}/v1/{method} not found (HTTP 404); is rest_url clnrest?"
            )
        if "code" in error or "message" in error:
            raise rpc_error(name, method, error)
        raise Transient(
            MalformedResponse(name, method, f"HTTP {status} without a JSON-RPC error: {error}")
        )

    def _rune_error(self, method: str, error: dict[str, Any]) -> RuneRejected:
        name, code = self.node.name, error.get("code")
        message = str(error.get("message", ""))
        source = self.node.rune_source()
        if code == RUNE_BLACKLISTED:
            why = f"the rune ({source}) was revoked on the node (blacklistrune)"
        elif code == RUNE_NOT_PERMITTED and "time" in message:
            why = f"the rune ({source}) has expired ({message})"
        elif code == RUNE_NOT_PERMITTED:
            detail = "not in its method list" if "method" in message else message
            why = f"the rune ({source}) does not allow {method} ({detail}); {rune_fix(method)}"
        elif "Missing" in message:
            why = f"no rune was sent ({source})"
        else:
            why = (
                f"the node does not accept the rune ({source}): it is not this node's, or it is "
                f"damaged ({message})"
            )
        if code != RUNE_NOT_PERMITTED or "time" in message:
            why += f"; {rune_fix(method)}"
        return RuneRejected(name, method, why, code if isinstance(code, int) else None)


def _excerpt(content: bytes) -> str:
    text = content[:80].decode("utf-8", "replace").replace("\n", " ").strip()
    return repr(text) + ("..." if len(content) > 80 else "")
