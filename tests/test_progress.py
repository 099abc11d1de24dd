"""Progress fits where it is written: a bar on a terminal, one plain line per step in a log."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from hiveops.progress import Progress


def test_a_log_gets_one_line_per_step_and_no_carriage_return() -> None:
    out = io.StringIO()
    with Progress(3, "demo step", stream=out) as progress:  # StringIO is not a TTY
        progress.step("day 0.3 of 1")
        progress.say("  fees failed: boom")
        progress.step()
        progress.step()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert [line.split(" (")[0] for line in lines] == [
        "demo step 1/3",
        "  fees failed: boom",
        "demo step 2/3",
        "demo step 3/3",
    ]
    assert lines[0].endswith("day 0.3 of 1")


def test_a_terminal_gets_a_bar_redrawn_in_place_and_news_on_its_own_line() -> None:
    out = io.StringIO()
    with Progress(2, "steps", stream=out, tty=True) as progress:
        progress.step()
        progress.say("news")
        progress.step()
    text = out.getvalue()
    assert text.count("\r  [") == 2 and "news\n" in text
    assert "[###############...............] 1/2 steps" in text
    assert text.endswith("\n") and text.count("\n") == 2  # the news line and the final newline


def test_a_process_whose_stdout_is_a_pipe_gets_plain_lines() -> None:
    """Detection on a real pipe (as under CI or systemd), not a stand-in stream."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    code = (
        "import sys; from hiveops.progress import Progress\n"
        "p = Progress(2, 'demo step')\n"
        "p.step(); p.step(); p.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "\r" not in out and out.count("\n") == 2
