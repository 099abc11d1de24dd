"""The report as a person sees it in the Prefect UI, checked in a real browser.

Starts a local Prefect server (its own PREFECT_HOME), runs `hiveops demo --days 1` against it (the
report flow publishes the artifact `hiveops-daily-report`), opens the artifact's page in headless
Debian Chromium through Playwright (the system browser: nothing is downloaded) and checks that
every chart image has loaded (natural width > 0) and that no text shows an escaped entity such as
`&amp;`. Screenshots (the page's top, then one per chart: ui-screenshot.png is the first chart)
are saved beside the report the run wrote. Run by `make ui-check`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKDIR = REPO / ".hiveops" / "ui-check"
ARTIFACT_KEY = "hiveops-daily-report"
CHROMIUM = os.environ.get("HIVEOPS_CHROMIUM", "/usr/bin/chromium")
# The probe-tested flags: no sandbox as root, and no background connections (this machine's
# network is closed; Chromium otherwise retries them many at a time).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_S = 180
PAGE_TIMEOUT_MS = 60_000


class CheckFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(url: str, body: dict | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    # The UI asks its API at PREFECT_UI_API_URL, derived from the settings, not from the CLI's
    # --port: with the port only on the command line the page called port 4200 and showed nothing.
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start"],
        env=env
        | {
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
        },
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as one below
    )
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"prefect server exited with {server.returncode}; see {log}")
        try:
            api(f"http://127.0.0.1:{port}/api/health")
            return server
        except OSError:
            time.sleep(0.5)
    raise CheckFailed(f"prefect server not healthy after {SERVER_START_S} s; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def latest_artifact(api_url: str) -> dict:
    found = api(
        f"{api_url}/artifacts/filter",
        {"artifacts": {"key": {"any_": [ARTIFACT_KEY]}}, "sort": "CREATED_DESC", "limit": 1},
    )
    if not isinstance(found, list) or not found:
        raise CheckFailed(f"the server has no artifact {ARTIFACT_KEY!r}")
    return found[0]


def look(url: str, screenshot: Path) -> dict:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="hiveops-ui-check-profile-"))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900},
            )
            page = browser.new_page()
            page.goto(url, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
            try:
                page.get_by_text("hiveops self-audit").first.wait_for(timeout=PAGE_TIMEOUT_MS)
                page.wait_for_function(
                    "() => { const c = [...document.images].filter("
                    "i => i.src.startsWith('data:image/')); "
                    "return c.length > 0 && c.every(i => i.complete); }",
                    timeout=PAGE_TIMEOUT_MS,
                )
            except PlaywrightTimeout:
                pass  # judged below from what the page shows, with its screenshot
            seen = page.evaluate(
                """() => ({
                    images: [...document.images].map(i => ({
                        alt: i.alt, inline: i.src.startsWith('data:image/'),
                        src: i.src.slice(0, 40), width: i.naturalWidth, height: i.naturalHeight,
                    })),
                    text: document.body.innerText,
                })"""
            )
            page.screenshot(path=str(screenshot.with_name("ui-top.png")))
            # The artifact scrolls inside the UI's own pane: one screenshot per chart in view.
            charts = page.locator("img[src^='data:image/']")
            for n in range(charts.count()):
                charts.nth(n).scroll_into_view_if_needed()
                shot = screenshot if n == 0 else screenshot.with_name(f"ui-chart-{n + 1}.png")
                page.screenshot(path=str(shot))
            browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return seen


def check() -> Path:
    if not Path(CHROMIUM).exists():
        raise CheckFailed(
            f"no browser at {CHROMIUM}: apt-get install chromium (or HIVEOPS_CHROMIUM)"
        )
    if WORKDIR.exists():
        shutil.rmtree(WORKDIR)
    WORKDIR.mkdir(parents=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(WORKDIR / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }
    started = time.monotonic()
    server = start_server(env, port, WORKDIR / "prefect-server.log")
    try:
        print(f"ui-check: prefect server on {api_url} ({time.monotonic() - started:.0f} s)")
        demo = subprocess.run(
            [str(BIN / "hiveops"), "demo", "--days", "1", "--workdir", str(WORKDIR / "demo")],
            env=env | {"PREFECT_API_URL": api_url},
            capture_output=True,
            text=True,
            check=False,
        )
        (WORKDIR / "demo.log").write_text(demo.stdout + demo.stderr)
        if demo.returncode != 0:
            raise CheckFailed(f"the demo failed ({demo.returncode}); see {WORKDIR / 'demo.log'}")
        print(f"ui-check: demo done ({time.monotonic() - started:.0f} s)")
        artifact = latest_artifact(api_url)
        report_dirs = sorted((WORKDIR / "demo" / "reports").glob("*/report.md"))
        if not report_dirs:
            raise CheckFailed("the demo wrote no report.md")
        screenshot = report_dirs[-1].parent / "ui-screenshot.png"
        url = f"http://127.0.0.1:{port}/artifacts/artifact/{artifact['id']}"
        seen = look(url, screenshot)
    finally:
        stop(server)
    charts = [i for i in seen["images"] if i["inline"]]
    print(f"ui-check: {url}: images {seen['images']}; screenshot {screenshot}")
    if "hiveops self-audit" not in seen["text"]:
        raise CheckFailed(f"the page does not show the report: {seen['text'][:300]!r}")
    if len(charts) < 2:
        raise CheckFailed(f"expected the report's 2 charts on the page, found {len(charts)}")
    broken = [i for i in charts if i["width"] <= 0 or i["height"] <= 0]
    if broken:
        raise CheckFailed(f"chart images that did not load (natural width 0): {broken}")
    escaped = [
        t
        for t in ("&amp;", "&lt;", "&gt;", "&quot;", "&#")
        if t in seen["text"] or any(t in i["alt"] for i in seen["images"])
    ]
    if escaped:
        raise CheckFailed(f"text escaped twice on the page: {escaped}")
    widths = ", ".join(f"{i['width']}x{i['height']}" for i in charts)
    print(
        f"ui-check: ok: {len(charts)} charts loaded ({widths}); no double escaping; screenshot "
        f"{screenshot} ({time.monotonic() - started:.0f} s)"
    )
    return screenshot


def main() -> int:
    try:
        check()
    except CheckFailed as exc:
        print(f"ui-check: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
