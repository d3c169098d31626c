"""The options the CLI and recommend() share."""

import multiprocessing

import pytest

from tuner.cli import build_parser, options_of
from tuner.errors import TuneLoaderError
from tuner.options import Options


def test_keywords_override_the_defaults_and_an_unknown_one_is_refused_with_the_known_ones():
    assert Options.of(None, {"trials": 8}).trials == 8
    with pytest.raises(TuneLoaderError, match="Unknown option.*seed.*Received: seed=3"):
        Options.of(None, {"seed": 3})


def test_a_start_method_this_platform_lacks_is_refused_naming_the_flag():
    with pytest.raises(TuneLoaderError, match=r"--start-method \(start_method\) must be one of .*Received: 'vfork'"):
        Options(start_method="vfork").check()
    Options(start_method=multiprocessing.get_all_start_methods()[0]).check()


def test_the_cli_s_flags_become_the_options():
    args = build_parser().parse_args(["my_gen.py", "--start-method", "spawn", "--trial-timeout", "20"])
    options = options_of(args)
    assert (options.start_method, options.window_timeout, options.trials) == ("spawn", 20.0, Options.default("trials"))
    assert options_of(build_parser().parse_args(["my_gen.py"])).start_method is None


def test_the_time_budget_counts_from_the_start_so_slow_probes_shorten_the_search_but_never_below_half():
    from tuner.search.schedule import Schedule

    def search_seconds(budget: float, spent: float) -> float:
        schedule = Schedule.after_probes(budget, spent, clock=lambda: 100.0)
        assert schedule.deadline == 100.0 + schedule.search_seconds and schedule.left() == schedule.search_seconds
        return schedule.search_seconds

    # One default, written once: the CLI's flag and recommend() share it.
    assert build_parser().parse_args(["my_gen.py"]).time_budget == Options().time_budget
    assert search_seconds(50.0, 7.0) == 43.0  # start-up and probes under fork
    assert search_seconds(50.0, 18.0) == 32.0  # under forkserver: fresh interpreters
    assert search_seconds(50.0, 40.0) == 25.0  # a slow model's probes: the search keeps half
