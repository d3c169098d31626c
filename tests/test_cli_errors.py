"""User errors end in one line on stderr and exit code 2, never a traceback."""

import subprocess
import sys
import textwrap

import pytest

from tuner.cli import parse_size


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_file(tmp_path):
    assert_one_line_error(run_cli(tmp_path / "nope.py", cwd=tmp_path), "No such file", "Received: file=")


def test_file_without_a_dataset(tmp_path):
    (tmp_path / "empty_gen.py").write_text("import numpy\nVALUE = 3\n")
    result = run_cli(tmp_path / "empty_gen.py", cwd=tmp_path)
    assert_one_line_error(result, "No dataset found in empty_gen.py", "make_dataset()")


def test_file_with_two_datasets_and_no_choice(tmp_path):
    (tmp_path / "two_gen.py").write_text(textwrap.dedent("""
        import keras, numpy as np
        class Base(keras.utils.PyDataset):
            def __len__(self): return 4
            def __getitem__(self, i): return np.zeros((2, 3)), np.zeros(2)
        train = Base()
        valid = Base()
    """))
    result = run_cli(tmp_path / "two_gen.py", cwd=tmp_path)
    assert_one_line_error(result, "several dataset instances", "train, valid", "--dataset")


def test_sizes_parse_in_powers_of_1024():
    assert parse_size("4G") == 4 * 2**30
    assert parse_size("512MiB") == 512 * 2**20
    assert parse_size("1000") == 1000
    with pytest.raises(Exception, match="expected a size"):
        parse_size("lots")


def test_a_generator_under_keras3_is_refused_with_what_to_do_instead(tmp_path):
    (tmp_path / "rows.py").write_text("def rows():\n    while True:\n        yield [1.0], [2.0]\n")
    result = run_cli(tmp_path / "rows.py", "--engine", "keras3", cwd=tmp_path)
    assert_one_line_error(result, "Keras 3 cannot run a plain generator in parallel", "PyDataset", "Received: engine=")


def test_a_generator_object_that_cannot_restart_is_refused(tmp_path):
    (tmp_path / "once.py").write_text("def rows():\n    while True:\n        yield [1.0], [2.0]\n\nSTREAM = rows()\n")
    result = run_cli(tmp_path / "once.py", "--dataset", "STREAM", cwd=tmp_path)
    assert_one_line_error(result, "same generator object every time", "make_dataset()")
