"""The dead man's switch: ping an outside monitor after each watchdog check.

healthchecks.io convention (also Uptime Kuma push, Cronitor, ...): a GET or POST to the check's
URL says "alive and well", to `<url>/fail` says "alive, but something is wrong" (the body carries
the stale list). The monitor alerts when pings stop, which hiveops itself cannot do when its host,
Prefect server or scheduler is down.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

log = logging.getLogger("hiveops.deadman")
TIMEOUT_S = 10.0


def ping_url(url: str, ok: bool) -> str:
    return url.rstrip("/") if ok else f"{url.rstrip('/')}/fail"


def ping_deadman(url: str | None, *, ok: bool, body: str = "") -> str | None:
    """POST to the ping URL (or `/fail`); returns the URL pinged, None when none is configured
    or the ping did not get through (logged: a monitor that hears nothing alerts anyway)."""
    if not url:
        return None
    target = ping_url(url, ok)
    request = urllib.request.Request(
        target,
        data=body.encode()[:10_000],  # healthchecks.io keeps the first 10 kB of a ping body
        method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "hiveops-watchdog"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        log.warning("hiveops: dead man's switch ping to %s failed: %s", target, exc)
        return None
    return target
