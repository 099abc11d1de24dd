"""Runes as lightningd issues and checks them (createrune, checkrune, showrunes, blacklistrune).

The `runes` package implements the format (Rusty Russell's, the one CLN uses); this adds what
lightningd adds around it: unique ids from a counter, the `readonly` shorthand, the fields a
restriction can test (time, id, method, pnum, pnameX with and without punctuation, parrN,
rate/per) and CLN's error codes 1501/1502/1503.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from runes import Alternative, MasterRune, Restriction, Rune

from lnsim.simerrors import INVALID_PARAMS, SimRpcError

RUNE_NOT_AUTHORIZED = 1501
RUNE_NOT_PERMITTED = 1502
RUNE_BLACKLISTED = 1503
READONLY = [["method^list", "method^get", "method=summary"], ["method/listdatastore"]]
PER_UNITS_NS = {
    "nsec": 1,
    "usec": 1_000,
    "msec": 1_000_000,
    "sec": 1_000_000_000,
    "min": 60 * 1_000_000_000,
    "hour": 3600 * 1_000_000_000,
    "day": 86_400 * 1_000_000_000,
}


def _value(param: Any) -> Any:
    """How lightningd compares a parameter: integers as integers, strings as their text, other
    JSON as its text."""
    if isinstance(param, bool):
        return "true" if param else "false"
    if isinstance(param, int | str):
        return param
    return json.dumps(param, separators=(",", ":"))


class NodeRunes:
    """One node's rune authority: its master secret, counter, stored runes and blacklist."""

    def __init__(self, secret: bytes, clock: Callable[[], int]) -> None:
        self._master = MasterRune(secret)
        self._clock = clock
        self._lock = threading.Lock()
        self._next_id = 0
        self._stored: dict[str, str] = {}
        self._blacklist: set[int] = set()
        self._last_used_ns: dict[str, int] = {}

    @classmethod
    def for_node(cls, seed: int, name: str, clock: Callable[[], int]) -> NodeRunes:
        return cls(hashlib.sha256(f"lnsim-rune:{seed}:{name}".encode()).digest(), clock)

    # -- RPC ---------------------------------------------------------------------------------
    def handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "createrune": self.createrune,
            "checkrune": self.checkrune,
            "showrunes": self.showrunes,
            "blacklistrune": self.blacklistrune,
        }

    def createrune(self, p: dict[str, Any]) -> dict[str, Any]:
        restrictions = _restrictions(p.get("restrictions", []))
        with self._lock:
            if p.get("rune"):
                rune = _decode(p["rune"])
            else:
                rune = self._master.copy()
                rune.add_restriction(Restriction.unique_id(self._next_id))
                self._next_id += 1
            for r in restrictions:
                rune.add_restriction(r)
            text = rune.to_base64()
            unique_id = _unique_id(rune)
            if not p.get("rune"):
                self._stored[unique_id] = text
        out = {"rune": text, "unique_id": unique_id}
        if not restrictions and not p.get("rune"):
            out["warning_unrestricted_rune"] = "WARNING: This rune has no restrictions!"
        return out

    def checkrune(self, p: dict[str, Any]) -> dict[str, Any]:
        if "rune" not in p:
            raise SimRpcError(INVALID_PARAMS, "missing required parameter: rune")
        self.check(str(p["rune"]), p.get("method"), p.get("params"), p.get("nodeid"))
        return {"valid": True}

    def showrunes(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            texts = [p["rune"]] if p.get("rune") else list(self._stored.values())
            out = []
            for text in texts:
                rune = _decode(text)
                uid = _unique_id(rune)
                row: dict[str, Any] = {
                    "rune": text,
                    "unique_id": uid,
                    "restrictions": [
                        {
                            "alternatives": [
                                {
                                    "fieldname": a.field,
                                    "value": a.value,
                                    "condition": a.cond,
                                    "english": a.encode(),
                                }
                                for a in r.alternatives
                            ],
                            "english": " OR ".join(a.encode() for a in r.alternatives),
                        }
                        for r in rune.restrictions
                        if not r.alternatives[0].is_unique_id()
                    ],
                    "restrictions_as_english": " AND ".join(
                        " OR ".join(a.encode() for a in r.alternatives)
                        for r in rune.restrictions
                        if not r.alternatives[0].is_unique_id()
                    ),
                }
                if uid not in self._stored:
                    row["stored"] = False
                if uid.isdigit() and int(uid) in self._blacklist:
                    row["blacklisted"] = True
                if not self._master.is_rune_authorized(rune):
                    row["our_rune"] = False
                out.append(row)
        return {"runes": out}

    def blacklistrune(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if "start" in p:
                start = int(p["start"])
                end = int(p.get("end", start))
                self._blacklist.update(range(start, end + 1))
            ranges = _ranges(sorted(self._blacklist))
        return {"blacklist": ranges}

    # -- the check ---------------------------------------------------------------------------
    def check(self, text: str, method: str | None, params: Any, nodeid: str | None = None) -> None:
        """Raise CLN's error for a rune that may not run `method` with `params`."""
        try:
            rune = _decode(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SimRpcError(INVALID_PARAMS, "rune: should be base64 string") from exc
        uid = _unique_id(rune)
        with self._lock:
            if uid.isdigit() and int(uid) in self._blacklist:
                raise SimRpcError(RUNE_BLACKLISTED, "Not authorized: Blacklisted rune")
            if not self._master.is_rune_authorized(rune):
                raise SimRpcError(RUNE_NOT_AUTHORIZED, "Not authorized: Not derived from master")
            ok, why = rune.are_restrictions_met(self._values(uid, method, params, nodeid))
            if not ok:
                raise SimRpcError(RUNE_NOT_PERMITTED, f"Not permitted: {_english(why)}")
            self._last_used_ns[uid] = time.time_ns()

    def _values(
        self, uid: str, method: str | None, params: Any, nodeid: str | None
    ) -> dict[str, Any]:
        values: dict[str, Any] = {"time": self._clock()}
        if method is not None:
            values["method"] = method
        if nodeid is not None:
            values["id"] = nodeid
        values["pnum"] = len(params) if isinstance(params, dict | list) else 0
        if isinstance(params, dict):
            for key, param in params.items():
                values[f"pname{key}"] = _value(param)
                stripped = "".join(c for c in key if c.isalnum())
                values.setdefault(f"pname{stripped}", _value(param))
        elif isinstance(params, list):
            for i, param in enumerate(params):
                values[f"parr{i}"] = _value(param)
        values["rate"] = lambda alt: self._since_last(uid, alt, "rate")
        values["per"] = lambda alt: self._since_last(uid, alt, "per")
        return values

    def _since_last(self, uid: str, alt: Alternative, field: str) -> str | None:
        if alt.cond != "=":
            return f"{field} operator must be ="
        try:
            if field == "rate":
                interval_ns = 60 * 1_000_000_000 // int(alt.value)
            else:
                digits = "".join(c for c in alt.value if c.isdigit())
                unit = alt.value[len(digits) :] or "sec"
                interval_ns = int(digits) * PER_UNITS_NS[unit]
        except (ValueError, KeyError, ZeroDivisionError):
            return f"malformed {field}"
        last = self._last_used_ns.get(uid)
        if last is not None and time.time_ns() - last < interval_ns:
            return "Rate of usage exceeded"
        return None


def _restrictions(raw: Any) -> list[Restriction]:
    if raw == "readonly":
        raw = READONLY
    if not isinstance(raw, list):
        raise SimRpcError(INVALID_PARAMS, "restrictions: must be 'readonly' or an array")
    out = []
    for restriction in raw:
        alternatives = restriction if isinstance(restriction, list) else [restriction]
        try:
            out.append(Restriction([Alternative.from_str(str(a)) for a in alternatives]))
        except (ValueError, IndexError) as exc:
            raise SimRpcError(INVALID_PARAMS, f"restrictions: {restriction!r}: {exc}") from exc
    return out


def _decode(text: str) -> Rune:
    padded = text + "=" * (-len(text) % 4)
    if len(base64.urlsafe_b64decode(padded)) < 32:
        raise ValueError("too short")
    return Rune.from_base64(padded)


def _unique_id(rune: Rune) -> str:
    first = rune.restrictions[0].alternatives[0] if rune.restrictions else None
    return first.value.split("-")[0] if first is not None and first.is_unique_id() else ""


def _english(why: str) -> str:
    """lightningd turns runespeak into words for parameters."""
    for prefix, words in (
        ("pname", "parameter "),
        ("parr", "parameter #"),
        ("pnum", "number of parameters"),
    ):
        if why.startswith(prefix):
            return words + why[len(prefix) :]
    return why


def _ranges(ids: list[int]) -> list[dict[str, int]]:
    out: list[dict[str, int]] = []
    for i in ids:
        if out and out[-1]["end"] == i - 1:
            out[-1]["end"] = i
        else:
            out.append({"start": i, "end": i})
    return out
