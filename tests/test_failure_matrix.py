"""The failure matrix: bad files, bad datasets, bad flags, hangs and signals, each through the real CLI.

For every case: the exit code, one line on stderr with no traceback, no process left behind (orphans
included: see tests/processes.py), and an earlier study left as it was. Only the pool-only hang times
trials, with short limits, so the matrix stays fast; docs/failures.md lists what happens in each.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.processes import left_after, tagged_env, tagged_processes
from tuner.outdir import OutputFolder

EARLIER_STUDY = "an earlier run's study"

FILES = {
    "syntax_error": "import numpy\nx = (\n",
    "exits_at_import": "import sys\nsys.exit(3)\n",
    "make_dataset_raises": "def make_dataset():\n    raise RuntimeError('the bucket is empty')\n",
    "empty": """
        import keras, numpy as np
        class Empty(keras.utils.PyDataset):
            def __len__(self): return 0
            def __getitem__(self, i): return np.zeros((4, 3)), np.zeros(4)
        def make_dataset(): return Empty()
    """,
    "shapes_differ": """
        import keras, numpy as np
        class Ragged(keras.utils.PyDataset):
            def __len__(self): return 9
            def __getitem__(self, i): return np.zeros((4, 3 + i // 4), "float32"), np.zeros(4, "float32")
        def make_dataset(): return Ragged()
    """,
    "make_dataset_hangs": "import time\n\ndef make_dataset():\n    time.sleep(3600)\n",
    # Keras's thread pool names its threads "Thread-N (worker)"; its processes have a parent.
    "hangs_in_a_pool": """
        import multiprocessing, threading, time, keras, numpy as np
        class HangsInAPool(keras.utils.PyDataset):
            def __len__(self): return 32
            def __getitem__(self, i):
                if threading.current_thread().name.endswith("(worker)") or multiprocessing.parent_process():
                    time.sleep(3600)
                return np.ones((8, 4), "float32"), np.zeros(8, "float32")
        def make_dataset(): return HangsInAPool()
    """,
    "unpicklable": """
        import threading, keras, numpy as np
        class Locked(keras.utils.PyDataset):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.lock = threading.Lock()
            def __len__(self): return 32
            def __getitem__(self, i):
                with self.lock:
                    return np.ones((8, 4), "float32"), np.zeros(8, "float32")
        def make_dataset(): return Locked()
    """,
    "dataloader_workers_crash": """
        import os, torch
        from torch.utils.data import DataLoader, Dataset, get_worker_info
        class CrashesInAWorker(Dataset):
            def __len__(self): return 256
            def __getitem__(self, i):
                if get_worker_info() is not None:
                    os._exit(3)
                return torch.ones(4), torch.zeros(())
        def make_dataset(): return DataLoader(CrashesInAWorker(), batch_size=8)
    """,
    # Native code that crashes only in a process worker: Keras's pool replaces the dead worker silently.
    "crashes_in_a_worker": """
        import ctypes, multiprocessing, keras, numpy as np
        class CrashesInAWorker(keras.utils.PyDataset):
            def __len__(self): return 32
            def __getitem__(self, i):
                if i == 3 and multiprocessing.parent_process() is not None:
                    ctypes.string_at(0)
                sum(range(600_000))  # holds the GIL, so process pools are among the first screened
                return np.ones((8, 4), "float32"), np.zeros(8, "float32")
        def make_dataset(): return CrashesInAWorker()
    """,
    "hangs_at_batch_5": """
        import time, keras, numpy as np
        class HangsAtFive(keras.utils.PyDataset):
            def __len__(self): return 32
            def __getitem__(self, i):
                if i == 5:
                    time.sleep(3600)
                return np.ones((8, 4), "float32"), np.zeros(8, "float32")
        def make_dataset(): return HangsAtFive()
    """,
}


def write(tmp_path, case: str):
    path = tmp_path / f"{case}.py"
    path.write_text(textwrap.dedent(FILES[case]))
    return path


def run_cli(tmp_path, file, *flags, out=None, **environ):
    env, tag = tagged_env()
    env |= environ
    out = out or tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "tuner.cli", str(file), "--out", str(out), *flags],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    return result, tag


def assert_failed_cleanly(result, tag, *fragments, code=2):
    assert result.returncode == code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert left_after(tag) == []


def with_earlier_study(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.db").write_text(EARLIER_STUDY)
    return out


@pytest.mark.parametrize("case, fragments", [
    ("syntax_error", ["syntax_error.py failed at line 2", "SyntaxError"]),
    ("exits_at_import", ["called sys.exit(3) while being imported (line 2)", '__name__ == "__main__"']),
    ("make_dataset_raises", ["make_dataset() failed with RuntimeError: the bucket is empty"]),
    ("empty", ["Empty has no batches", "Received: len() = 0"]),
    ("shapes_differ", ["batch 0 is (float32[4, 3], float32[4]) but batch 4 is (float32[4, 4], float32[4])"]),
])
def test_a_bad_file_or_dataset_ends_in_one_line_and_keeps_the_earlier_study(tmp_path, case, fragments):
    out = with_earlier_study(tmp_path)
    result, tag = run_cli(tmp_path, write(tmp_path, case), out=out)
    assert_failed_cleanly(result, tag, *fragments)
    assert (out / "study.db").read_text() == EARLIER_STUDY and not (out / "previous").exists()


@pytest.mark.parametrize("flags, fragment", [
    (["--trial-timeout", "-5"], "--trial-timeout (window_timeout) must be a positive number"),
    (["--load-timeout", "0"], "--load-timeout (load_timeout) must be a positive number"),
    (["--max-memory", "0"], "--max-memory (max_memory) must be at least 1 GiB"),
    (["--trials", "0"], "--trials (trials) must be at least 1"),
])
def test_a_limit_that_cannot_hold_is_refused_before_anything_starts(tmp_path, flags, fragment):
    started = time.monotonic()
    result, tag = run_cli(tmp_path, write(tmp_path, "make_dataset_raises"), *flags)
    assert_failed_cleanly(result, tag, fragment)
    assert time.monotonic() - started < 30  # TensorFlow never started


@pytest.mark.parametrize("environ, fragment", [
    ({"KERAS_BACKEND": "numpy"}, "Received: backend='numpy' from KERAS_BACKEND"),
    ({"KERAS_BACKEND": "", "KERAS_HOME": "{tmp}"}, "Received: backend='openvino' from {tmp}/keras.json"),
])
def test_a_backend_that_cannot_train_is_refused_before_anything_starts(tmp_path, environ, fragment):
    (tmp_path / "keras.json").write_text('{"backend": "openvino"}')
    environ = {name: value.format(tmp=tmp_path) for name, value in environ.items()}
    started = time.monotonic()
    result, tag = run_cli(tmp_path, write(tmp_path, "make_dataset_raises"), **environ)
    assert_failed_cleanly(result, tag, "Keras 3 trains only with the tensorflow, jax, torch backends",
                          fragment.format(tmp=tmp_path))
    assert time.monotonic() - started < 30  # TensorFlow never started


@pytest.mark.parametrize("inside_the_file, fragment", [(False, "--out names a file"),
                                                       (True, "Cannot write the output folder")])
def test_an_unusable_out_folder_is_refused_up_front(tmp_path, inside_the_file, fragment):
    (tmp_path / "taken").write_text("a file")
    out = tmp_path / "taken" / "out" if inside_the_file else tmp_path / "taken"
    result, tag = run_cli(tmp_path, write(tmp_path, "make_dataset_raises"), out=out)
    assert_failed_cleanly(result, tag, fragment, "Received: --out")


def test_a_second_run_into_a_folder_in_use_is_refused_at_once(tmp_path):
    with OutputFolder.claim(tmp_path / "out"):
        result, tag = run_cli(tmp_path, write(tmp_path, "make_dataset_raises"))
    assert_failed_cleanly(result, tag, "is in use by another tune-loader run (pid", "pass another --out")


def test_a_hang_before_the_first_trial_honours_the_load_timeout_and_names_the_line(tmp_path):
    started = time.monotonic()
    result, tag = run_cli(tmp_path, write(tmp_path, "make_dataset_hangs"), "--load-timeout", "5")
    assert_failed_cleanly(result, tag, "Importing your file and building the dataset failed: timed out after 5 s",
                          "make_dataset_hangs.py, line 4, in make_dataset",
                          "Fix: raise --load-timeout if it is only slow.")
    assert time.monotonic() - started < 60


def test_a_hang_in_the_warm_up_stops_when_no_batch_came_for_the_trial_timeout_and_names_batch_and_line(tmp_path):
    started = time.monotonic()
    result, tag = run_cli(tmp_path, write(tmp_path, "hangs_at_batch_5"), "--trial-timeout", "20")
    assert_failed_cleanly(result, tag, "The warm-up",
                          "no batch came for 20 s (batch 5 was asked for and has not come back",
                          "hangs_at_batch_5.py, line 7, in __getitem__",
                          "Fix: if a batch can take that long, pass a larger --trial-timeout.")
    assert time.monotonic() - started < 60


def test_data_code_that_hangs_only_in_a_pool_keeps_the_defaults_with_each_reason_even_past_the_budget(tmp_path):
    out = tmp_path / "out"
    result, tag = run_cli(tmp_path, write(tmp_path, "hangs_in_a_pool"), "--time-budget", "10", "--trial-timeout", "6",
                          "--trials", "6", out=out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and not any(line.startswith("error:") for line in result.stderr.splitlines())
    answer = json.loads((out / "results.json").read_text())
    assert answer["knobs"] == {"workers": 1, "use_multiprocessing": False, "max_queue_size": 10}
    assert answer["config"]["native_threads"] is None
    hung = [t for t in answer["trials"] if t["status"] == "failed"]
    assert hung and all("hangs_in_a_pool.py, line 7, in __getitem__" in t["reason"] for t in hung), hung
    assert "hangs_in_a_pool.py, line 7, in __getitem__" in result.stderr  # the terminal gives the line too
    assert any(reason.startswith("Every worker pool tried failed or hung") for reason in answer["reasons"])
    assert "hangs_in_a_pool.py, line 7" in (out / "report.html").read_text()
    assert left_after(tag) == []


def test_an_unpicklable_dataset_under_spawn_is_tuned_without_processes_and_says_why_in_one_line(tmp_path):
    out = tmp_path / "out"
    result, tag = run_cli(tmp_path, write(tmp_path, "unpicklable"), "--start-method", "spawn", "--time-budget", "5",
                          "--trials", "4", out=out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and not any(line.startswith("error:") for line in result.stderr.splitlines())
    answer = json.loads((out / "results.json").read_text())
    assert answer["machine"]["start_method"] == "spawn"
    assert not any(t["config"]["use_multiprocessing"] for t in answer["trials"])
    why = [w for w in answer["warnings"] if w.startswith("Processes were not tried")]
    assert len(why) == 1 and "cannot pickle" in why[0] and "under spawn every worker is sent it by pickle" in why[0]
    assert left_after(tag) == []


def test_a_dataloader_whose_workers_crash_keeps_the_defaults_and_records_each_crash(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "out"
    result, tag = run_cli(tmp_path, write(tmp_path, "dataloader_workers_crash"), "--time-budget", "8", "--trials", "4",
                          out=out, KERAS_BACKEND="torch")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and not any(line.startswith("error:") for line in result.stderr.splitlines())
    answer = json.loads((out / "results.json").read_text())
    assert answer["engine"] == "torch-dataloader" and answer["knobs"] == {"num_workers": 0}
    crashed = [t for t in answer["trials"] if t["config"]["use_multiprocessing"]]
    # torch names the dead worker when it checks its workers (every 5 s); on a busy machine the stall watch
    # can stop the trial first
    assert crashed and all(t["status"] == "failed" and ("DataLoader worker" in t["reason"] or t["reason"].startswith(
        "timed out: no batch came")) for t in crashed), [(t["status"], t["reason"]) for t in crashed]
    assert any(reason.startswith("Every worker pool tried failed or hung") for reason in answer["reasons"])
    assert left_after(tag) == []


def test_a_worker_that_crashes_is_named_at_once_with_its_signal_batch_and_line(tmp_path):
    out = tmp_path / "out"
    result, tag = run_cli(tmp_path, write(tmp_path, "crashes_in_a_worker"), "--time-budget", "8", "--trials", "4",
                          out=out)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads((out / "results.json").read_text())
    crashed = [t for t in answer["trials"] if t["config"]["use_multiprocessing"]]
    assert crashed and all(t["status"] == "failed" for t in crashed)
    for trial in crashed:  # not a 30 s "timed out": the death itself, as it happened
        assert trial["reason"].startswith("a worker process died from SIGSEGV while making batch 3, at "), trial
        assert "crashes_in_a_worker.py, line 7, in __getitem__" in trial["reason"]
    assert answer["config"]["use_multiprocessing"] is False
    assert left_after(tag) == []


def start_hanging_run(tmp_path) -> tuple[subprocess.Popen, str]:
    """A run whose trial process is stuck in the user's make_dataset(), once that process exists."""
    env, tag = tagged_env()
    run = subprocess.Popen([sys.executable, "-m", "tuner.cli", str(write(tmp_path, "make_dataset_hangs")),
                            "--out", str(tmp_path / "out")], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(tagged_processes(tag)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # into the user's code
    return run, tag


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_stops_the_run_and_its_trial_process(tmp_path, signum):
    run, tag = start_hanging_run(tmp_path)
    run.send_signal(signum)
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 128 + signum
    assert f"Stopped by {signal.Signals(signum).name}" in stderr and "Traceback" not in stderr
    assert left_after(tag) == []


def test_the_trial_process_dies_with_a_parent_killed_outright(tmp_path):
    run, tag = start_hanging_run(tmp_path)
    run.kill()  # SIGKILL: no handler runs in the parent
    run.communicate(timeout=30)
    assert left_after(tag, grace_seconds=10) == []
