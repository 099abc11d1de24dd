"""Validate responses against CLN's own JSON schemas (doc/schemas), which use CLN type names.

CLN's schemas say `"type": "msat"`, `"short_channel_id"`, `"pubkey"`...; this maps each to a
check and otherwise uses jsonschema's Draft 7 rules (allOf/if/then, additionalProperties).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from jsonschema import Draft7Validator, validators

HEX = re.compile(r"^[0-9a-fA-F]*$")


def _int_range(bits: int):  # type: ignore[no-untyped-def]
    return lambda c, v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**bits


def _scid(_: Any, v: Any) -> bool:
    if not isinstance(v, str):
        return False
    parts = v.split("x")
    return len(parts) == 3 and all(p.isdigit() for p in parts) and int(parts[0]) < 2**24


def _hexlen(n: int | None):  # type: ignore[no-untyped-def]
    return lambda c, v: isinstance(v, str) and bool(HEX.match(v)) and (n is None or len(v) == n)


CLN_TYPES = {
    "u64": _int_range(64),
    "u32": _int_range(32),
    "u16": _int_range(16),
    "u8": _int_range(8),
    "msat": _int_range(64),
    "sat": _int_range(64),
    "msat_or_all": lambda c, v: v == "all" or _int_range(64)(c, v),
    "msat_or_any": lambda c, v: v == "any" or _int_range(64)(c, v),
    "sat_or_all": lambda c, v: v == "all" or _int_range(64)(c, v),
    "short_channel_id": _scid,
    "short_channel_id_dir": lambda c, v: (
        isinstance(v, str) and "/" in v and _scid(c, v.split("/")[0])
    ),
    "pubkey": lambda c, v: isinstance(v, str) and bool(re.match(r"^0[23][0-9a-f]{64}$", v)),
    "hex": _hexlen(None),
    "hash": _hexlen(64),
    "txid": _hexlen(64),
    "secret": _hexlen(64),
    "point32": _hexlen(64),
    "signature": _hexlen(None),
    "number": lambda c, v: isinstance(v, int | float) and not isinstance(v, bool),
    "feerate": lambda c, v: isinstance(v, str | int),
    "outpoint": lambda c, v: isinstance(v, str) and ":" in v,
    "outputdesc": lambda c, v: isinstance(v, dict),
    "currency": lambda c, v: isinstance(v, str),
}


def _validator_class():  # type: ignore[no-untyped-def]
    checker = Draft7Validator.TYPE_CHECKER.redefine_many(CLN_TYPES)
    return validators.extend(Draft7Validator, type_checker=checker)


# The schemas of the methods the simulator serves, shipped as package data (see its SOURCE.md).
SHIPPED_SCHEMAS: Traversable = files("lnsim") / "data" / "cln-schemas"


@cache
def _schema(schema_dir: Traversable, method: str) -> dict[str, Any]:
    path = schema_dir / f"{method}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no CLN schema for {method!r} in {schema_dir}: copy doc/schemas/{method}.json from "
            "the CLN commit named in its SOURCE.md"
        )
    return json.loads(path.read_text())


def response_errors(schema_dir: Traversable, method: str, response: Any) -> list[str]:
    schema = _schema(schema_dir, method)["response"]
    validator = _validator_class()(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(response)
    ]
