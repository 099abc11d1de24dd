"""The errors a node call ends in, whichever transport carried it (unix socket or clnrest)."""

from __future__ import annotations

from models.cln import METHOD_SINCE


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


class RuneRejected(NodeError):
    """The node refused the rune (wrong, revoked, expired, or too narrow for the method):
    retrying cannot help, a new rune can."""


class Transient(Exception):
    """A failure worth retrying (the node restarting, a dropped connection, a cut body);
    `sent` when the node may have received (and acted on) the call."""

    def __init__(self, error: NodeError, *, sent: bool = True) -> None:
        super().__init__(str(error))
        self.error, self.sent = error, sent


# lightningd's transient codes: plugin died (-4), shutting down (-5); -32603 internal error.
RETRYABLE_CODES = frozenset({-4, -5, -32603})
UNKNOWN_COMMAND = -32601
# checkrune's codes (lightning-checkrune(7)).
RUNE_NOT_AUTHORIZED = 1501
RUNE_NOT_PERMITTED = 1502
RUNE_BLACKLISTED = 1503
RUNE_CODES = frozenset({RUNE_NOT_AUTHORIZED, RUNE_NOT_PERMITTED, RUNE_BLACKLISTED})


def rpc_error(node: str, method: str, error: dict[str, object]) -> NodeError | Transient:
    """A JSON-RPC error object, as lightningd returns it on the socket and clnrest in its body."""
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    message = str(error.get("message", error))
    if code in RETRYABLE_CODES:
        return Transient(NodeError(node, method, message, code), sent=False)
    if code == UNKNOWN_COMMAND:
        message += f" ({missing_method_hint(method)})"
    return NodeError(node, method, message, code)


def missing_method_hint(method: str) -> str:
    since = METHOD_SINCE.get(method)
    if since:
        return f"{method} needs CLN {since} or later; upgrade lightningd"
    return "is the plugin that provides it installed and running?"
