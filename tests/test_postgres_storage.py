"""A team's studies in one PostgreSQL database (--storage): a real server, real Keras runs, marked slow.

The server is Debian's PostgreSQL, which the README's test command (and so .ci/run) installs; this module
starts a throwaway cluster of its own on a Unix socket and stops it afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import optuna
import pytest

pytestmark = pytest.mark.slow

SLEEPY = """
import time
import keras
import numpy as np

class Sleepy(keras.utils.PyDataset):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def __len__(self):
        return 40

    def __getitem__(self, index):
        time.sleep(0.01)
        x = np.full((8, 4), index, dtype="float32")
        return x, x.sum(axis=1)

def make_dataset():
    return Sleepy()
"""


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is needed for this test: apt-get install -y postgresql (the README's test command does)")
    return found[-1].parent


@pytest.fixture(scope="module")
def postgres_url():
    """A fresh cluster in a temporary folder, owned by the postgres user when run as root (initdb refuses root)."""
    bin_dir = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="tune-loader-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", "54329"
    run = lambda *command: subprocess.run([*as_owner, *map(str, command)], check=True, capture_output=True)  # noqa: E731
    run(bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "postgres")
    run(bin_dir / "pg_ctl", "-D", data, "-w", "-l", folder / "log", "-o",
        f"-p {port} -k {folder} -c listen_addresses=''", "start")
    try:
        run(bin_dir / "createdb", "-h", folder, "-p", port, "-U", "postgres", "studies")
        yield f"postgresql+psycopg://postgres@/studies?host={folder}&port={port}"
    finally:
        run(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def tune(tmp_path: Path, url: str, *flags: str) -> subprocess.CompletedProcess:
    (tmp_path / "sleepy.py").write_text(textwrap.dedent(SLEEPY))
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", "sleepy.py", "--trials", "2", "--time-budget", "10", "--storage", url,
         "--out", str(tmp_path / "out"), *flags], cwd=tmp_path, capture_output=True, text=True, timeout=400)


def test_two_runs_share_one_postgres_database_as_separate_studies_with_provenance(tmp_path, postgres_url):
    # What another machine left in the database: the same file's study under another machine's hash.
    first = tune(tmp_path, postgres_url)
    assert first.returncode == 0, first.stderr[-3000:]
    (mine,) = optuna.get_all_study_summaries(postgres_url)
    other_name = mine.study_name.rpartition("@")[0] + "@0therbox"
    other = optuna.create_study(study_name=other_name, storage=postgres_url, direction="maximize")
    other.set_user_attr("machine", "a 64-core box")
    other.set_user_attr("recommendation", "workers=48, use_multiprocessing=False, max_queue_size=64")

    again = tune(tmp_path, postgres_url)  # same name, no --resume: refused, the study kept
    assert again.returncode == 2 and "already exists in --storage" in again.stderr and "Traceback" not in again.stderr

    second = tune(tmp_path, postgres_url, "--study-name", "sleepy on a second run")
    assert second.returncode == 0, second.stderr[-3000:]
    studies = {s.study_name: s for s in optuna.get_all_study_summaries(postgres_url)}
    assert set(studies) == {mine.study_name, other_name, "sleepy on a second run"}
    for name in (mine.study_name, "sleepy on a second run"):
        attributes = studies[name].user_attrs
        assert json.loads(attributes["provenance"])["source"].endswith("sleepy.py")
        assert attributes["recommendation"].startswith("workers=") and attributes["machine"]
    assert "optuna-dashboard postgresql+psycopg://" in second.stdout
    # The run under the default name sees the other machine's study of the same file.
    third = tune(tmp_path, postgres_url, "--resume", "--trials", "3")
    assert third.returncode == 0, third.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert any("a 64-core box" in line and "workers=48" in line for line in report["other_machines"])


def test_an_unreachable_storage_is_one_line_before_tensorflow_starts(tmp_path):
    result = tune(tmp_path, "postgresql+psycopg://nobody@/nowhere?host=/nonexistent&port=1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Cannot open --storage" in errors[0] and "Starting Keras" not in result.stderr


FIT_TWICE = """
import json, sys
import keras
from sleepy import Sleepy
import tuner
from tuner.training import train

froms = []
for _ in range(2):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history, outcome = train(model, Sleepy(), 12, verbose=0, storage=sys.argv[1])
    froms.append(outcome.candidates_from)
print(json.dumps(froms))
"""


def test_tuner_fit_records_its_epochs_and_the_next_training_starts_from_them(tmp_path, postgres_url):
    (tmp_path / "sleepy.py").write_text(textwrap.dedent(SLEEPY))
    (tmp_path / "fit_twice.py").write_text(FIT_TWICE)
    done = subprocess.run([sys.executable, "fit_twice.py", postgres_url], cwd=tmp_path, capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    # The first starts from the CLI's study of the same class when this module's CLI test left one, else from
    # the screen; the second from the first's, the newest.
    assert first is None or (first.startswith("tune-loader:") and ":Sleepy@" in first)
    assert second.startswith("tune-loader:fit:Sleepy:Sleepy@")
    study = optuna.load_study(study_name=second, storage=postgres_url)
    assert study.user_attrs["source"] == "tuner.fit" and "answer_config" in study.user_attrs
    assert {t.user_attrs.get("origin") for t in study.trials} == {"training"}
