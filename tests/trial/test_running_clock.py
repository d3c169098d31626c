"""The parent's clock for trial timeouts: a pause of the whole machine is not the user's code stalling."""

from tuner.trial import parent


def test_a_poll_that_comes_a_pause_late_does_not_count_the_pause(monkeypatch):
    ticks = iter([100.0, 100.2, 100.4, 160.4, 160.6, 165.6])
    monkeypatch.setattr(parent.time, "monotonic", lambda: next(ticks))
    clock = parent.RunningClock()
    seen = [clock.now() for _ in range(5)]
    # polls 0.2 s apart run on; 60 s with no poll was a pause; 5 s late (under PAUSE_SECONDS) still counts
    assert seen == [100.2, 100.4, 100.4, 100.6, 105.6]
