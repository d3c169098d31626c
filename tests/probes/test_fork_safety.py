"""The fork-safety probe (probes/fork_safety.py) on objects holding what a fork must not carry, and what the
space and the advice make of it. No Keras."""

import dataclasses
import socket
import sqlite3
import threading

from probes.fork_safety import fork_hazards
from probes.profiles import ForkHazard, ForkHazardKind
from tests import builders
from tuner.analysis import advice
from tuner.core import LoaderConfig
from tuner.engines.knobs import KERAS_KNOBS
from tuner.search.space import SearchSpace


class Rows:
    """A dataset that opens its handles in __init__, as held-out loaders do."""

    def __init__(self, tmp_path):
        self.conn = sqlite3.connect(tmp_path / "rows.db")
        self.files = {"index": open(tmp_path / "index.txt", "w")}  # noqa: SIM115
        self.peers = [socket.socket()]
        self.stop = threading.Event()
        self.worker = threading.Thread(target=self.stop.wait, daemon=True)
        self.worker.start()
        self.closed_file = open(tmp_path / "done.txt", "w")  # noqa: SIM115
        self.closed_file.close()
        self.table = list(range(10_000))


def test_connections_sockets_open_files_and_running_threads_are_found_by_where_they_sit(tmp_path):
    rows = Rows(tmp_path)
    try:
        found = set(fork_hazards(rows, "dataset"))
        assert found >= {ForkHazard(ForkHazardKind.SQLITE, "dataset.conn"),
                         ForkHazard(ForkHazardKind.OPEN_FILE, "dataset.files['index']"),
                         ForkHazard(ForkHazardKind.SOCKET, "dataset.peers[0]"),
                         ForkHazard(ForkHazardKind.THREAD, "dataset.worker")}
        assert not any(h.where == "dataset.closed_file" for h in found)  # a closed file is harmless
    finally:
        rows.stop.set()
        rows.conn.close()
        rows.files["index"].close()
        rows.peers[0].close()
    assert not [h for h in fork_hazards(rows, "dataset") if h.kind != ForkHazardKind.THREAD]


def test_a_process_answer_names_the_hazard_its_fix_and_that_only_fork_runs_it():
    hazards = (ForkHazard(ForkHazardKind.SQLITE, "dataset.conn"),)
    data = dataclasses.replace(builders.dataset(picklable=False, pickle_error="cannot pickle 'sqlite3.Connection'"),
                               fork_hazards=hazards)
    space = SearchSpace.for_profiles(builders.machine(), data, knobs=KERAS_KNOBS)
    warnings = advice.warn(label=KERAS_KNOBS.label, chosen=LoaderConfig(2, True, 10), chosen_trial=None, trials=(), dataset=data,
                           memory_budget_bytes=None, not_tried=space.not_tried)
    hazard = next(w for w in warnings if "must not cross fork()" in w)
    assert "sqlite3 connection at dataset.conn" in hazard and "os.getpid()" in hazard
    assert any("Under spawn or forkserver" in w for w in warnings)
    threads = advice.warn(label=KERAS_KNOBS.label, chosen=LoaderConfig(2, False, 10), chosen_trial=None, trials=(), dataset=data,
                          memory_budget_bytes=None, not_tried=space.not_tried)
    assert not any("fork()" in w for w in threads)  # threads share the process: nothing crosses a fork
