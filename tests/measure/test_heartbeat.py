"""The heartbeat the parent reads to see a trial process stall (no Keras: plain processes)."""

import multiprocessing
import time

from tuner.measure import heartbeat


def test_a_batch_made_in_a_forked_worker_reaches_the_parent(monkeypatch):
    shared = heartbeat.Heartbeat.create()
    shared.arm(watched=True)
    monkeypatch.setattr(heartbeat, "_current", shared)

    def worker():
        with heartbeat.batch(7):
            time.sleep(0.05)
        heartbeat.step(0.2)

    before = time.monotonic()
    process = multiprocessing.get_context("fork").Process(target=worker)
    process.start()
    process.join(10)
    progress = shared.read()
    assert (progress.oldest_in_flight, progress.returned) == (-1, 7)
    assert progress.last_progress > before and progress.slowest_seconds == 0.2
    assert progress.watched


def test_a_batch_that_never_returns_is_named_and_arming_starts_over(monkeypatch):
    shared = heartbeat.Heartbeat.create()
    shared.arm(watched=True)
    shared.returned(4, 0.01)
    for index in (5, 6, 7):  # a parallel pipeline asks for later batches while batch 5 hangs
        shared.requested(index)
    shared.returned(6, 0.02)
    shared.returned(7, 0.01)
    assert shared.read().where() == "batch 5 was asked for and has not come back"
    shared.returned(5, 0.03)
    assert shared.read().where() == "the last batch to come back was batch 5"
    shared.requested(8)
    shared.arm(watched=False)
    progress = shared.read()
    assert progress.where() == "no batch came back" and not progress.watched
    assert progress.slowest_seconds == 0.03  # the slowest batch outlives the step


def test_a_call_of_a_process_that_is_gone_is_not_named(monkeypatch):
    shared = heartbeat.Heartbeat.create()
    shared.arm(watched=True)
    monkeypatch.setattr(heartbeat, "_current", shared)

    def worker_ended_mid_batch():
        shared.requested(3)

    process = multiprocessing.get_context("fork").Process(target=worker_ended_mid_batch)
    process.start()
    process.join(10)
    assert shared.read().oldest_in_flight == -1
    shared.requested(11)
    assert shared.read().where() == "batch 11 was asked for and has not come back"


def test_the_child_opens_the_parent_s_heartbeat_from_its_environment(monkeypatch):
    shared = heartbeat.Heartbeat.create()
    shared.arm(watched=False)
    monkeypatch.setenv(heartbeat.ENVIRONMENT, str(shared.fd))
    monkeypatch.setattr(heartbeat, "_current", None)
    heartbeat.install_from_environment()
    heartbeat.watch(True)
    with heartbeat.batch(3):
        pass
    assert shared.read().returned == 3 and shared.read().watched


def test_outside_a_trial_process_the_heartbeat_does_nothing(monkeypatch):
    monkeypatch.setattr(heartbeat, "_current", None)
    with heartbeat.batch(1):
        value = 42
    heartbeat.step(1.0)
    heartbeat.watch(False)
    assert value == 42


def test_while_unwatched_only_a_batch_call_running_past_the_limit_is_a_stall():
    shared = heartbeat.Heartbeat.create()
    shared.arm(watched=False)  # an epoch's first step: the pool may be starting, the graph tracing
    now = time.monotonic()
    assert not shared.read().stalled(now + 60, limit=20)  # a long pause with no batch asked for
    shared.requested(5)  # Keras shuffled the hung batch into the first step
    assert not shared.read().stalled(time.monotonic() + 10, limit=20)
    assert shared.read().stalled(time.monotonic() + 30, limit=20)
    shared.watch(True)
    shared.returned(5, 0.01)
    assert not shared.read().stalled(time.monotonic() + 10, limit=20)
    assert shared.read().stalled(time.monotonic() + 30, limit=20)


def test_a_batch_call_that_raises_is_no_longer_in_flight(monkeypatch):
    shared = heartbeat.Heartbeat.create()
    shared.arm(watched=False)
    monkeypatch.setattr(heartbeat, "_current", shared)
    stream = iter([1])
    for _ in range(2):  # a generator's end raises StopIteration inside the call
        try:
            with heartbeat.batch(3):
                next(stream)
        except StopIteration:
            pass
    progress = shared.read()
    assert (progress.oldest_in_flight, progress.returned) == (-1, 3)
    assert not progress.stalled(time.monotonic() + 60, limit=30)


def test_a_slot_read_while_it_is_written_is_skipped(monkeypatch):
    shared = heartbeat.Heartbeat.create()
    shared.arm(watched=False)
    shared.requested(2)
    whole = shared._map[:]
    torn = bytearray(whole)
    start = heartbeat._WORD * len(heartbeat._FIELDS) + heartbeat._SLOT.size * 2 + 8
    torn[start:start + 8] = bytes(8)  # the index written, the start not yet
    reads = iter([bytes(torn), whole])

    class TornMap:
        def __getitem__(self, key):
            return next(reads)[key]

    monkeypatch.setattr(shared, "_map", TornMap())
    assert shared._oldest_in_flight() == (-1, 0.0)
