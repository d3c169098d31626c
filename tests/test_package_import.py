"""``import tuner`` is light: a worker that unpickles one of tune-loader's wrappers imports the engine's
module, not the parent's search, study or report stack (Optuna among them)."""

import subprocess
import sys

import tuner

# scipy.stats is not ours but took 0.45 s of every worker's start through probes.stats.
PARENT_STACK = ("optuna", "tuner.api", "tuner.search.study", "tuner.analysis.advice", "reports", "scipy.stats")


def _imported_after(statement: str) -> list[str]:
    probe = f"import sys; {statement}; print(' '.join(m for m in {PARENT_STACK!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.split()


def test_the_engine_a_worker_unpickles_imports_none_of_the_parent_stack():
    assert _imported_after("import tuner") == []
    assert _imported_after("import tuner.engines.keras3") == []


def test_every_public_name_still_loads_from_the_package():
    assert sorted(tuner.__all__) == sorted(["__version__", *tuner._WHERE])
    assert all(getattr(tuner, name) is not None for name in tuner.__all__)
    assert tuner.recommend.__module__ == "tuner.api"
