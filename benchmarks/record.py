"""Where benchmark results go: ``benchmarks/results/<machine>/<commit>/<name>-<time>.json``, one file per
run, git-ignored, as asv keeps them. The repository holds the benchmarks, not their history."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from probes import probe_machine
from probes.serde import to_dict

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def commit() -> str:
    """The commit being measured, with ``-dirty`` when the working tree has uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine_name() -> str:
    machine = probe_machine()
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{platform.node()}-{machine.usable_cores}cores")


def run_file(name: str) -> Path:
    """A new file for one run of benchmark ``name`` on this machine at this commit."""
    folder = RESULTS / machine_name() / commit()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"


def save(path: Path, name: str, data: object) -> Path:
    """Writes one run's raw results with the machine, the commit, the date and the command line."""
    record = {"benchmark": name, "commit": commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": " ".join(sys.argv), "machine": to_dict(probe_machine()), "results": data}
    path.write_text(json.dumps(record, indent=1, default=str))
    return path


def run_and_save(name: str, items: Iterable[T], run: Callable[[T], dict]) -> tuple[list[dict], Path]:
    """Runs benchmark ``name`` on each item, saving the results after each one, so that a failure later in
    the run keeps what was measured."""
    results, path = [], run_file(name)
    for item in items:
        results.append(run(item))
        save(path, name, results)
    return results, path


def write_summary_section(begin: str, end: str, section: str) -> None:
    """Replaces one benchmark's section of benchmarks/RESULTS.md (the one generated summary), or adds it."""
    summary = ROOT / "benchmarks" / "RESULTS.md"
    text = summary.read_text() if summary.exists() else "# Benchmark results\n"
    block = f"{begin}\n{section}\n{end}"
    pattern = re.escape(begin) + ".*?" + re.escape(end)
    text = re.sub(pattern, lambda _: block, text, flags=re.DOTALL) if begin in text else f"{text}\n{block}\n"
    summary.write_text(text)
