"""The output folder's lock and the keeping of earlier results, in-process: no Keras."""

import os

import pytest

from tuner.errors import TuneLoaderError
from tuner.outdir import LOCK_NAME, OutputFolder


def test_a_claimed_folder_cannot_be_claimed_again_until_released(tmp_path):
    folder = OutputFolder.claim(tmp_path / "out")
    with pytest.raises(TuneLoaderError, match=rf"in use by another tune-loader run \(pid {os.getpid()} on "):
        OutputFolder.claim(tmp_path / "out")
    folder.release()
    with OutputFolder.claim(tmp_path / "out") as again:
        assert again.took_over_from == ""  # released cleanly: nothing to take over


def test_a_lock_left_by_a_dead_run_is_taken_over_and_named(tmp_path):
    (tmp_path / LOCK_NAME).write_text("pid 4242 on elsewhere, started 2026-01-01 00:00:00 UTC")
    with OutputFolder.claim(tmp_path) as folder:
        assert folder.took_over_from.startswith("pid 4242 on elsewhere")


@pytest.mark.parametrize("inside_the_file", [False, True])
def test_an_unusable_folder_is_refused_with_one_line(tmp_path, inside_the_file):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(TuneLoaderError, match="Received: --out"):
        OutputFolder.claim(tmp_path / "taken" / "out" if inside_the_file else tmp_path / "taken")


def test_earlier_results_move_to_previous_and_nothing_else_does(tmp_path):
    for name in ("study.db", "report.html", "results.json", "mine.txt"):
        (tmp_path / name).write_text(name)
    with OutputFolder.claim(tmp_path) as folder:
        kept = folder.keep_previous()
        assert kept.parent == tmp_path / "previous"
        assert sorted(p.name for p in kept.iterdir()) == ["report.html", "results.json", "study.db"]
        assert (kept / "study.db").read_text() == "study.db"
        assert (tmp_path / "mine.txt").exists() and not (tmp_path / "study.db").exists()
        assert folder.keep_previous() is None  # nothing left to keep
