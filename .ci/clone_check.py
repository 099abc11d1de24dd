"""A stranger's first run: the committed HEAD, cloned where nothing is beside it, installed from
its own wheel into a fresh venv, runs the demo from an empty folder and writes its report.

Run by `make clone-check` (part of `make test`). Standard library only: it must not depend on the
checkout's .venv being importable. Every phase is timed against a wall budget
(HIVEOPS_CLONE_CHECK_BUDGET_S, default 90 s). Past it the check says so; it fails on it only with
HIVEOPS_CLONE_CHECK_STRICT=1, because on a shared 2-core machine wall time is set by the other
jobs (the same check took 90 s and 9 minutes on one machine in one hour).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET_S = float(os.environ.get("HIVEOPS_CLONE_CHECK_BUDGET_S", "90"))
DEMO_DAYS = os.environ.get("HIVEOPS_CLONE_CHECK_DAYS", "1")
REPORT_LINE = re.compile(r"self-audit report: (\S+report\.md) \((\d+) of (\d+) detectors fired")


class CheckFailed(Exception):
    pass


def run(cmd: list[str], cwd: Path, env: dict[str, str], phase: str, timings: dict) -> str:
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    timings[phase] = time.monotonic() - started
    print(f"clone-check: {phase}: {timings[phase]:.1f} s", flush=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise CheckFailed(f"{phase} failed (exit {done.returncode}): {' '.join(cmd)}\n{tail}")
    return done.stdout


def clean_env(root: Path) -> dict[str, str]:
    """The caller's environment less anything that would point hiveops or Prefect at our setup."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HIVEOPS_", "PREFECT_", "VIRTUAL_ENV", "PYTHON"))
    }
    env["PREFECT_HOME"] = str(root / "prefect-home")  # a first user's Prefect, not ours
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def nothing_beside(path: Path) -> None:
    for parent in [path, *path.parents]:
        if (parent / "shared").exists():
            raise CheckFailed(f"{parent / 'shared'} exists above the clone: pick another TMPDIR")


def check(root: Path) -> dict[str, float]:
    timings: dict[str, float] = {}
    env = clean_env(root)
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(
        f"clone-check: HEAD {head[:12]} in {root}"
        + (" (uncommitted changes are not part of it)" if dirty else ""),
        flush=True,
    )
    clone = root / "hiveops"
    nothing_beside(root)
    run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)],
        root,
        env,
        "clone",
        timings,
    )
    run(["git", "checkout", "--quiet", "--detach", head], clone, env, "checkout", timings)

    dist = root / "dist"
    py = sys.executable
    run(
        [py, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(clone)],
        root,
        env,
        "build wheel",
        timings,
    )
    wheels = sorted(dist.glob("hiveops-*.whl"))
    if len(wheels) != 1:
        raise CheckFailed(f"expected one hiveops wheel in {dist}, found {wheels}")
    shutil.rmtree(clone)  # the installed wheel must stand alone: no checkout left to fall back on

    # A venv of its own with no pip in it (ensurepip costs more than the rest of the setup); the
    # caller's pip installs into it. --no-compile: byte-compiling all of Prefect at install time
    # doubles the install; Python compiles what the demo imports.
    venv = root / "venv"
    run([py, "-m", "venv", "--without-pip", str(venv)], root, env, "create venv", timings)
    run(
        [
            py,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-compile",
            str(wheels[0]),
        ],
        root,
        env,
        "install wheel with its dependencies",
        timings,
    )

    workdir = root / "empty"
    workdir.mkdir()
    where = run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import json, lnsim, engine.report.detectors as d;"
            "print(json.dumps([lnsim.__file__, sorted(d.TITLES.values())]))",
        ],
        workdir,
        env,
        "import",
        timings,
    )
    lnsim_file, titles = json.loads(where)
    if not Path(lnsim_file).resolve().is_relative_to(venv.resolve()):
        raise CheckFailed(f"lnsim imported from {lnsim_file}, not from the fresh venv {venv}")

    out = run(
        [str(venv / "bin" / "hiveops"), "demo", "--days", DEMO_DAYS],
        workdir,
        env,
        f"hiveops demo --days {DEMO_DAYS}",
        timings,
    )
    found = REPORT_LINE.search(out)
    if not found:
        raise CheckFailed("the demo printed no 'self-audit report:' line:\n" + out[-3000:])
    report = Path(found.group(1))
    if not report.is_absolute():
        report = workdir / report
    if not report.resolve().is_relative_to(workdir.resolve()) or not report.is_file():
        raise CheckFailed(f"report {report} is missing or outside the working folder {workdir}")
    text = report.read_text()
    named = [t for t in titles if t in text]
    if int(found.group(3)) < 1 or not named:
        raise CheckFailed(f"{report} names no detector result (titles: {titles})")
    print(
        f"clone-check: report {report.relative_to(workdir)}: {found.group(2)} of "
        f"{found.group(3)} detectors fired; it names {len(named)} of {len(titles)} detectors, "
        f"e.g. {named[0]!r}",
        flush=True,
    )
    return timings


def main() -> int:
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="hiveops-clone-check-"))
    try:
        timings = check(root)
    except CheckFailed as exc:
        print(f"clone-check: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    wall_s = time.monotonic() - started
    over = wall_s > BUDGET_S
    strict = os.environ.get("HIVEOPS_CLONE_CHECK_STRICT") == "1"
    verdict = ("FAILED: " if strict else "ok, but ") + "OVER BUDGET" if over else "ok"
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    print(f"clone-check: {verdict}: {wall_s:.0f} s of a {BUDGET_S:.0f} s budget ({phases})")
    return 1 if over and strict else 0


if __name__ == "__main__":
    sys.exit(main())
