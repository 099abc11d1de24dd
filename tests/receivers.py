"""Local receivers for alert delivery tests: an HTTP endpoint (plain webhook, apprise json://,
dead man's switch pings, with a healthchecks.io-style monitor of the pings) and an SMTP server."""

from __future__ import annotations

import email
import json
import threading
import time
from dataclasses import dataclass, field
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Message:
    channel: str  # webhook | apprise-json | email | monitor
    subject: str
    body: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class Ping:
    path: str
    method: str
    body: str
    at: float = field(default_factory=time.monotonic)


class HttpReceiver:
    """POST /hook (hiveops JSON), POST /apprise (apprise json://), GET|POST /ping/<check>[/fail].

    `monitor(check, period_s, grace_s)` acts like healthchecks.io for that check: once pings stop
    for period + grace, it records one "missed" message (and one "back up" when pings resume)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.pings: list[Ping] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length", 0) or 0)
                raw = self.rfile.read(length).decode() if length else ""
                receiver._receive(self.command, self.path, raw)
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._stop = threading.Event()

    def _receive(self, method: str, path: str, raw: str) -> None:
        with self._lock:
            if path.startswith("/ping/"):
                self.pings.append(Ping(path, method, raw))
                return
            data = json.loads(raw or "{}")
            if path.startswith("/apprise"):
                self.messages.append(Message("apprise-json", data["title"], data["message"]))
            else:
                self.messages.append(Message("webhook", data["subject"], data["body"]))

    def monitor(self, check: str, period_s: float, grace_s: float) -> None:
        def watch() -> None:
            down = False
            while not self._stop.wait(0.2):
                with self._lock:
                    last = max((p.at for p in self.pings if p.path.startswith(f"/ping/{check}")),
                               default=None)  # fmt: skip
                    if last is None:
                        continue
                    late_s = time.monotonic() - last
                    if not down and late_s > period_s + grace_s:
                        down = True
                        self.messages.append(
                            Message(
                                "monitor",
                                f"[DOWN] {check}",
                                f"{check}: no ping for {late_s:.0f} s (period {period_s:g} s, "
                                f"grace {grace_s:g} s)",
                            )
                        )
                    elif down and late_s < period_s:
                        down = False
                        self.messages.append(Message("monitor", f"[UP] {check}", "pings again"))

        threading.Thread(target=watch, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1: every mail as a Message (subject, plain-text body)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mail = email.message_from_bytes(envelope.content, policy=default_policy)
                part = mail.get_body(preferencelist=("plain", "html"))
                body = part.get_content() if part is not None else ""
                receiver.messages.append(Message("email", str(mail["subject"]), body))
                return "250 OK"

        from hiveops.serve import free_port

        self.port = free_port()  # aiosmtpd connects to its own port to check it is up: no 0
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self, to: str = "ops@example.com") -> str:
        return (
            f"mailto://hiveops@127.0.0.1:{self.port}/?to={to}&from=hiveops@example.com"
            f"&mode=insecure"
        )

    def close(self) -> None:
        self.controller.stop()


def wait_until(check: Any, timeout_s: float, what: str, seen: Any = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen in {timeout_s:.0f}s; seen: {seen() if seen else ''}")
