"""Errors the simulated lightningd returns, with CLN's codes."""

from __future__ import annotations

from typing import Any

INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
LIGHTNINGD = -1
FUND_CANNOT_AFFORD = 300
FUND_MAX_EXCEEDED = 301
CONNECT_NO_KNOWN_ADDRESS = 401


class SimRpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error
