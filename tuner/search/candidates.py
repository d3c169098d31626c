"""The settings the screen times: a broad set that spans the space, ordered and trimmed by the analytic model.

The model's error is largest exactly where the answer lies (the height of a plateau, threads against
processes, what native threads do to a pool), so it never picks the answer: it decides the order in which
settings are screened (the most promising first, in case the time budget cuts the screen short) and drops
only settings it puts far below its best guess.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tuner.core import KERAS_DEFAULTS, LoaderConfig, PoolKind, TrialOrigin
from tuner.engines.knobs import DEFAULT_QUEUE
from tuner.search.space import SearchSpace

# The model's epoch throughput for a candidate below this share of its best guess drops it. Its guesses
# have run 30% under and 8x over the measurements (docs/analytic-model.md): a factor of three keeps every
# setting it underrates by less than that.
TRIM_SHARE = 1 / 3


def broad_grid(space: SearchSpace) -> list[LoaderConfig]:
    """Inline, then the engine's pools that span the space (``KnobSet.pools``: workers on a log scale up to the
    space's most), every one also at each native-thread limit the space searches. Thread pools the data
    cannot run are represented by one setting, recorded as infeasible without running."""
    runnable = tuple(kind for kind in space.pool_kinds if kind != PoolKind.THREADS or not space.threads_infeasible)
    base = [KERAS_DEFAULTS] + space.knobs.pools(space.max_workers, runnable, space.max_queue_size)
    if space.threads_infeasible and PoolKind.THREADS in space.pool_kinds:
        base.append(LoaderConfig(2, False, DEFAULT_QUEUE))
    natives = [dataclasses.replace(config, native_threads=limit) for limit in space.native_threads for config in base]
    return _unique(base + natives)


def candidates(space: SearchSpace, rule_of_thumb: LoaderConfig, predicted: Callable[[LoaderConfig], float],
               limit: int) -> list[tuple[TrialOrigin, LoaderConfig]]:
    """``(origin, setting)`` pairs to screen, at most ``limit``: the defaults first (the claim's reference),
    then the broad grid and the rule of thumb, the model's favourites first, without those it puts under
    ``TRIM_SHARE`` of its best guess (never the rule of thumb, which users compare against)."""
    grid = [config for config in broad_grid(space) if config != KERAS_DEFAULTS]
    rule = [rule_of_thumb] if space.allows(rule_of_thumb) and rule_of_thumb.parallel else []
    rates = {config: predicted(config) for config in grid + rule}
    best = max(rates.values(), default=0.0)
    kept = [config for config in grid if rates[config] >= TRIM_SHARE * best or space.infeasible(config)]
    ranked = _each_family_first(sorted(_unique(rule + kept), key=lambda c: (-round(rates[c], 1), c.simplicity)))
    origins = [(TrialOrigin.DEFAULTS, KERAS_DEFAULTS)] + [
        (TrialOrigin.RULE_OF_THUMB if config in rule else TrialOrigin.GRID, config) for config in ranked]
    return origins[:limit]


def _each_family_first(ranked: list[LoaderConfig]) -> list[LoaderConfig]:
    """The model's favourite of each family (pool kind, native-thread limit, persistence) first, in the
    model's order, then the rest in it. The model errs most between families: on per-batch BLAS work its
    thread test, run at the libraries' default threads, read threads as GIL-bound, ranked every thread pool
    last, and a screen cut short by the time budget never timed the 1.9x answer (docs/search.md)."""
    first: dict[tuple, LoaderConfig] = {}
    for config in ranked:
        first.setdefault(config.family, config)
    heads = list(first.values())
    return heads + [config for config in ranked if config not in heads]


def _unique(configs: list[LoaderConfig]) -> list[LoaderConfig]:
    """Each setting Keras runs alike once (without a pool the queue is unused)."""
    seen, unique = set(), []
    for config in configs:
        if config.equivalence_key() not in seen:
            seen.add(config.equivalence_key())
            unique.append(config)
    return unique
