"""Alert targets as URLs: a plain `http(s)://` webhook (JSON POST), or any apprise URL
(Telegram, Slack, Discord, e-mail, ntfy, ...), checked here so a typo fails at install time with
the expected shape instead of silently never delivering."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

# The targets node operators use, with the URL shape apprise expects (its wiki has the rest).
KNOWN_SHAPES: dict[str, tuple[str, str]] = {
    "tgram": ("Telegram", "tgram://BOT_TOKEN/CHAT_ID"),
    "slack": ("Slack", "slack://TOKEN_A/TOKEN_B/TOKEN_C[/#channel]"),
    "discord": ("Discord", "discord://WEBHOOK_ID/WEBHOOK_TOKEN"),
    "mailto": ("e-mail", "mailto://USER:PASSWORD@smtp.example.org?to=ops@example.org"),
    "mailtos": ("e-mail over TLS", "mailtos://USER:PASSWORD@smtp.example.org?to=ops@example.org"),
    "ntfy": ("ntfy", "ntfy://TOPIC or ntfy://HOST[:PORT]/TOPIC"),
    "ntfys": ("ntfy over TLS", "ntfys://ntfy.sh/TOPIC"),
    "json": ("JSON webhook (apprise format)", "json://HOST[:PORT]/PATH"),
    "jsons": ("JSON webhook over TLS (apprise format)", "jsons://HOST[:PORT]/PATH"),
    "matrix": ("Matrix", "matrixs://USER:TOKEN@HOST/#room"),
    "pover": ("Pushover", "pover://USER_KEY@APP_TOKEN"),
    "gotify": ("Gotify", "gotifys://HOST/TOKEN"),
}
WIKI = "https://github.com/caronc/apprise/wiki"


def is_plain_webhook(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def redact(url: str) -> str:
    """scheme://host/... without tokens or passwords, for messages and listings."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme in {"tgram", "slack", "discord", "pover", "gotify", "gotifys"}:
        host = "…"  # these carry the secret in the host/path
    port = f":{parts.port}" if parts.port else ""
    tail = "/…" if parts.path.strip("/") else ""
    return f"{parts.scheme}://{host}{port}{tail}"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def check_notify_url(url: str) -> str:
    """`url` unchanged when it can deliver; ValueError naming the target and its shape if not."""
    url = url.strip()
    if is_plain_webhook(url):
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError(f"notify URL {url!r}: no host; expected https://HOST[:PORT]/PATH")
        return url
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme:
        raise ValueError(
            f"notify URL {url!r} has no scheme: use an apprise URL such as tgram://BOT_TOKEN/"
            f"CHAT_ID, slack://..., discord://..., mailto://..., ntfy://TOPIC, or an "
            f"https:// webhook ({WIKI})"
        )
    import apprise

    capture = _Capture()
    apprise_logger = logging.getLogger("apprise")
    apprise_logger.addHandler(capture)
    propagate, apprise_logger.propagate = apprise_logger.propagate, False  # ours says it better
    try:
        plugin = apprise.Apprise.instantiate(url)
    finally:
        apprise_logger.removeHandler(capture)
        apprise_logger.propagate = propagate
    if plugin is not None:
        return url
    why = "; ".join(m for m in capture.messages if "Could not load" not in m)
    if scheme in KNOWN_SHAPES:
        name, shape = KNOWN_SHAPES[scheme]
        raise ValueError(
            f"notify URL {redact(url)} is not a valid {name} URL"
            f"{f' ({why})' if why else ''}; expected {shape} ({WIKI})"
        )
    raise ValueError(
        f"notify URL {redact(url)}: apprise cannot use scheme {scheme}://"
        f"{f' ({why})' if why else ''}; known targets: "
        f"{', '.join(f'{s}:// ({n})' for s, (n, _) in KNOWN_SHAPES.items())}, https:// webhooks "
        f"and the rest of {WIKI}"
    )
