"""Which native crashes of a trial's processes end the trial (``parent.worker_crash_reason``)."""

from tuner.trial.parent import worker_crash_reason

USER_LINE = "/data/my_gen.py, line 7, in __getitem__"


def test_a_crash_that_lost_a_batch_names_the_signal_the_batch_and_the_line():
    reason = worker_crash_reason("Segmentation fault", [3, 1], USER_LINE)
    assert reason.startswith(f"a worker process died from SIGSEGV while making batch 3, at {USER_LINE} ")


def test_a_crash_in_user_code_ends_the_trial_even_before_the_heartbeat_saw_its_batch():
    reason = worker_crash_reason("Bus error", [], USER_LINE)
    assert reason.startswith(f"a worker process died from SIGBUS, at {USER_LINE} ")


def test_an_abort_outside_user_code_that_held_no_batch_is_not_a_failure():
    """A forked helper of TensorFlow's process can abort as it exits: no batch is lost, the trial goes on."""
    assert worker_crash_reason("Aborted", [], None) is None


def test_an_unknown_fatal_error_keeps_its_own_words():
    assert worker_crash_reason("Something else", [0], None).startswith("a worker process died from Something else "
                                                                     "while making batch 0 (Something else)")
