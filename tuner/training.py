"""Training that tunes itself: ``train()`` runs the user's epochs one ``fit`` call each, races the loader's
settings on them (``search.epoch_race``), and trains the rest with the winner. ``tuner.fit`` (``fitting.py``)
adds the report.

Keras reads the knobs once per ``fit`` and a later ``fit(initial_epoch=e, epochs=e + 1)`` reuses the compiled
step, so each epoch can run its own setting through the public API. One callback list serves every call
(``engines.training.HeldBounds``): the user's callbacks see one training. docs/training.md says how it decides.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from probes import probe_machine
from probes.dataset import probe_dataset
from probes.profiles import DataKind, MachineProfile
from probes.serde import to_dict
from probes.stats import summarize
from tuner import engines
from tuner.analysis import wording
from tuner.core import KERAS_DEFAULTS, LoaderConfig, TrialOrigin, TrialStatus
from tuner.engines import registry
from tuner.errors import TuneLoaderError
from tuner.results import EpochRole, TrainingEpoch, TrainingOutcome, TrainingScreen, TrialResult
from tuner.search import decision
from tuner.search.candidates import broad_grid
from tuner.search.epoch_race import EpochRace, exploration_bound
from tuner.search.space import SearchSpace
from tuner.search.study import StoredAnswer, StudySettings, default_study_name, record_trials, stored_answer

# fit() arguments passed on to every per-epoch fit as given.
PASSED_ON = ("validation_data", "validation_freq", "validation_steps", "class_weight", "shuffle")
# fit() arguments tuner.fit cannot honour, and why: refused at once, never dropped.
REFUSED = {
    "steps_per_epoch": "every epoch is a fit() call of its own and starts the data again, where one fit() with "
                       "steps_per_epoch goes on from where the last epoch stopped",
    "y": "the loader gives the targets", "sample_weight": "the loader gives the sample weights",
    "batch_size": "the loader makes the batches", "validation_split": "it splits arrays, not a loader",
    "validation_batch_size": "a validation loader makes its own batches",
    "workers": "tuner.fit sets the loader's knobs itself", "use_multiprocessing": "tuner.fit sets the loader's knobs itself",
    "max_queue_size": "tuner.fit sets the loader's knobs itself",
}
# The screen reads each setting for about SCREEN_SECONDS at the inline rate, at least SCREEN_BATCHES batches
# and two for each batch in flight (one wave would not show a pool's rate); at least SCREEN_AT_LEAST
# settings, then more while it has spent under SCREEN_SHARE of the training's inline estimate.
SCREEN_SECONDS = 0.25
SCREEN_BATCHES = 8
SCREEN_SHARE = 0.03
SCREEN_AT_LEAST = 6
# At most this many settings race (fewer where the exploration bound allows fewer rounds).
CONTENDERS = 3


@dataclass(frozen=True)
class Contenders:
    """The settings to race, best known first, each with its data-only epoch seconds where screened."""

    configs: tuple[LoaderConfig, ...]
    data_seconds: dict[LoaderConfig, float]
    screen: tuple[TrainingScreen, ...]
    stored: StoredAnswer | None
    space: SearchSpace


def check_arguments(epochs: int, initial_epoch: int, fit_kwargs: dict[str, Any]) -> None:
    """Refuses, before anything runs, what ``tuner.fit`` cannot train as ``model.fit`` would."""
    for name in fit_kwargs:
        if name in REFUSED:
            raise TuneLoaderError(f"tuner.fit cannot take {name}: {REFUSED[name]}. Fix: drop {name}, or train "
                                  f"with model.fit. Received: {name}={fit_kwargs[name]!r}")
        if name not in PASSED_ON:
            raise TuneLoaderError(f"tuner.fit does not know the fit() argument {name}. Expected one of "
                                  f"callbacks, verbose, initial_epoch, {', '.join(PASSED_ON)}. Received: {name}=...")
    if not isinstance(epochs, int) or epochs < 1 or not isinstance(initial_epoch, int) or not 0 <= initial_epoch < epochs:
        raise TuneLoaderError("tuner.fit needs a whole number of epochs, at least 1, and 0 <= initial_epoch < "
                              f"epochs. Received: epochs={epochs!r}, initial_epoch={initial_epoch!r}")


def engine_for(model: Any, x: Any) -> engines.KerasEngine:
    """The engine that trains ``x`` on ``model``, if ``tuner.fit`` can train it epoch by epoch."""
    engine = engines.resolve(x, None)
    if not hasattr(engine, "feeder"):
        raise TuneLoaderError(f"tuner.fit does not train {' or '.join(registry.entry(engine.name).takes)} yet. Fix: tune it "
                              f"with tune-loader FILE and pass its settings to model.fit. Received: {type(x).__name__}")
    data = engine.adopt(x)
    if engine.kind(data) == DataKind.GENERATOR or not engine.num_batches(data):
        raise TuneLoaderError("tuner.fit needs data with a length (len() batches per epoch): each epoch is a fit() "
                              "call of its own. Fix: write the generator as a PyDataset or Sequence. "
                              f"Received: {type(x).__name__}")
    if not engine.owns_model(model):
        raise TuneLoaderError(f"The model is not a {registry.entry(engine.name).keras} model, which this data "
                              f"trains on. Received: model={type(model).__name__}")
    return engine


def contenders(engine, data, user: LoaderConfig, machine: MachineProfile, epochs: int,
               stored: StoredAnswer | None, runs: Callable[[LoaderConfig], bool]) -> Contenders:
    """The settings to race: a stored answer and its runner-ups, else the screen's fastest (the user's own
    setting always among those screened)."""
    knobs = registry.knob_set(engine.name, engine.backend)
    count = min(CONTENDERS, 1 + exploration_bound(epochs) // 2)
    if stored is not None:  # the data is not probed again: the stored run did, on this machine
        ranked = [stored.answer] + [c for c in decision.finalists(stored.trials) if c != stored.answer]
        timed = [stored.answer] + [t.config for t in stored.trials]
        space = SearchSpace(max(c.workers for c in timed), allow_processes=True, knobs=knobs)
        return Contenders(tuple([c for c in ranked if runs(c)][:count]), {}, (), stored, space)
    profile = probe_dataset(data, kind=engine.kind(data), num_batches=engine.num_batches(data),
                            usable_cores=machine.usable_cores, get_batch=lambda i: engine.batch(data, i),
                            user_knobs=engine.user_knobs(data))
    space = SearchSpace.for_profiles(machine, profile, backend=engine.backend, search_native_threads=False, knobs=knobs)
    grid = [c for c in broad_grid(space) if runs(c) and space.allows(c) and not space.infeasible(c) and c != user]
    screened = _screen(engine, data, [user] + _extremes_first(grid), profile, epochs)
    batches = engine.num_batches(data)
    rates = {s.config: s.batches_per_second for s in screened if not s.reason}
    fastest = max(rates.values())
    near = [c for c in rates if rates[c] >= (1 - decision.SCREEN_NOISE) * fastest]
    best = min(near, key=lambda c: c.simplicity)
    others = sorted((c for c in rates if c != best), key=lambda c: -rates[c])
    chosen = [best] + [c for c in others if rates[c] >= (1 - decision.SCREEN_MARGIN) * fastest][:count - 1]
    return Contenders(tuple(chosen), {c: batches / rates[c] for c in rates}, tuple(screened), None, space)


def _extremes_first(grid: Sequence[LoaderConfig]) -> list[LoaderConfig]:
    """The grid so that a screen cut short has still spanned it: each pool kind ordered fewest batches in
    flight, most, next fewest, next most... (waiting code wants the most, code that holds the cores the
    fewest), and the kinds taken in turn."""
    kinds: dict[object, list[LoaderConfig]] = {}
    for config in sorted(dict.fromkeys(grid), key=lambda c: (c.effective_parallelism, c.simplicity)):
        kinds.setdefault(config.kind, []).append(config)
    orders = [[ranked.pop(-1 if index % 2 else 0) for index in range(len(ranked))] for ranked in kinds.values()]
    return [config for turn in itertools.zip_longest(*orders) for config in turn if config is not None]


def _screen(engine, data, grid: Sequence[LoaderConfig], profile, epochs: int) -> list[TrainingScreen]:
    """Each setting's data read alone, without training, the user's first (see ``SCREEN_SECONDS``); a
    setting that raises is recorded with its reason and is not a contender."""
    per_batch, epoch = max(profile.wall_seconds.median, 1e-4), engine.num_batches(data)
    allowance = SCREEN_SHARE * epochs * epoch * per_batch
    screened, spent = [], 0.0
    for index, config in enumerate(grid):
        if index >= SCREEN_AT_LEAST and spent > allowance:
            break
        batches = min(epoch, max(SCREEN_BATCHES, math.ceil(SCREEN_SECONDS / per_batch),
                                 2 * config.effective_parallelism))
        began = time.perf_counter()
        try:
            seconds = engine.read_window(data, config, batches, index * SCREEN_BATCHES)
        except Exception as error:  # noqa: BLE001 - the data code's own error, whatever it is
            screened.append(TrainingScreen(config, 0.0, batches, f"{type(error).__name__}: {error}"))
        else:
            screened.append(TrainingScreen(config, batches / seconds, batches))
        spent += time.perf_counter() - began
    if all(s.reason for s in screened):
        raise TuneLoaderError("Reading the data failed under every setting tuner.fit tried, your own among them "
                              f"({screened[0].reason}). Fix: check that model.fit trains on it. "
                              f"Received: {type(data).__name__}")
    return screened


class _Training:
    """The user's epochs, one ``fit`` call each, every one under the setting the race names."""

    def __init__(self, model, engine, feeder, callbacks, fit_kwargs: dict[str, Any], batches: int):
        self.model, self.engine, self.feeder, self.callbacks = model, engine, feeder, callbacks
        self.fit_kwargs, self.batches = fit_kwargs, batches
        self.log: list[TrainingEpoch] = []
        self.failures: dict[LoaderConfig, str] = {}

    def fit_epoch(self, epoch: int, config: LoaderConfig) -> float:
        """Trains epoch ``epoch`` under ``config``; its seconds from the call to the return."""
        data, extra = self.feeder.fit_input(config)
        began = time.perf_counter()
        self.model.fit(data, epochs=epoch + 1, initial_epoch=epoch, callbacks=self.callbacks, verbose=0,
                       **{**self.fit_kwargs, **extra})
        return time.perf_counter() - began

    def run(self, first: int, epochs: int, found: Contenders, user: LoaderConfig) -> EpochRace:
        """Trains epochs ``first`` to ``epochs - 1``: the warm-up under the best known, then the race, then
        the winner. A setting other than the user's own that raises is abandoned and its epoch trained
        again, under the race's next setting, then under the user's own (``_setting``); the user's own
        raising is the user's error, raised as ``model.fit`` would."""
        race, epoch, strikes = None, first, 0
        self.model.stop_training = False  # as fit() starts; an earlier fit's EarlyStopping may have left it set
        while epoch < epochs and not self.model.stop_training:
            config = self._setting(race, found, user, strikes)
            role = EpochRole.WARM_UP if race is None else EpochRole.RACE if not race.over else EpochRole.TRAIN
            ended = self.callbacks.last_epoch
            try:
                seconds = self.fit_epoch(epoch, config)
            except Exception as error:
                if config == user:
                    raise
                self._abandon(race, config, error, epoch)
                strikes += 1
                continue
            resumed = self.engine.resumed_epoch(self.model)
            if self.callbacks.last_epoch == ended:  # no epoch ran: BackupAndRestore restored a later one
                if resumed is None or resumed <= epoch:
                    break  # or fit trained nothing for a reason of its own, as another call would not
                epoch = resumed
                continue
            self.log.append(TrainingEpoch(epoch, config, role if not strikes else EpochRole.RETRIED, seconds,
                                          self.callbacks.take_validation_seconds()))
            if race is None:
                race = self._race(found, seconds, epochs - epoch - 1, config)
            elif role == EpochRole.RACE and not strikes:
                race.record(config, self.batches / seconds)
            epoch, strikes = self.callbacks.last_epoch + 1, 0
        return race or EpochRace([next((c for c in found.configs if c not in self.failures), user)], 0)

    def _setting(self, race: EpochRace | None, found: Contenders, user: LoaderConfig, strikes: int) -> LoaderConfig:
        """The next epoch's setting: the race's (the first contender not failed, for the warm-up), or the
        user's own once two settings failed on this epoch or every contender has."""
        if strikes >= 2:
            return user
        if race is None:
            return next((c for c in found.configs if c not in self.failures), user)
        config = race.next_setting()
        return user if config in self.failures else config

    def _race(self, found: Contenders, warm_up_seconds: float, epochs_left: int, warmed: LoaderConfig) -> EpochRace:
        """The race over the epochs after the warm-up (which ``warmed`` trained), among the contenders not
        failed whose data alone could keep up with the warm-up epoch within ``decision.SCREEN_MARGIN`` (the
        data's own time is a floor under an epoch's)."""
        reach = warm_up_seconds / (1 - decision.SCREEN_MARGIN)
        racing = [c for c in found.configs if found.data_seconds.get(c, 0.0) <= reach and c not in self.failures]
        return EpochRace(racing or [warmed], exploration_bound(epochs_left + 1))

    def _abandon(self, race: EpochRace | None, config: LoaderConfig, error: Exception, epoch: int) -> None:
        """``config`` raised during ``epoch``: recorded, and out of the race."""
        reason = f"{type(error).__name__}: {error}"
        self.failures[config] = reason
        self.log.append(TrainingEpoch(epoch, config, EpochRole.FAILED, math.nan))
        if race is not None:
            race.abandon(config, reason)


def train(model: Any, x: Any, epochs: int = 1, *, callbacks: Sequence | None = None, verbose: Any = "auto",
          initial_epoch: int = 0, storage: str | None = None, look_in: Sequence[str] = (),
          **fit_kwargs: Any) -> tuple[Any, TrainingOutcome]:
    """Trains ``model`` on ``x`` for ``epochs`` as ``model.fit`` would, racing the loader's settings on the
    epochs; returns the one ``History`` of all epochs and what was measured. Contenders come from the latest
    stored answer for this data on this machine in ``storage`` or ``look_in`` (Optuna storage URLs), else
    from the screen; the epochs are recorded in ``storage``'s study."""
    check_arguments(epochs, initial_epoch, fit_kwargs)
    engine = engine_for(model, x)
    callbacks = list(callbacks or [])
    engine.check_callbacks(callbacks)
    began, machine, data, feeder = time.monotonic(), probe_machine(), engine.adopt(x), engine.feeder(x)
    batches, name = engine.num_batches(data), getattr(data, "class_name", None) or type(data).__name__
    user = feeder.user_setting or KERAS_DEFAULTS
    try:
        stored = stored_answer([s for s in (storage, *look_in) if s], name, machine)
        found = contenders(engine, data, user, machine, epochs - initial_epoch, stored, feeder.runs)
        setup = time.monotonic() - began
        one = engine.one_training(model, callbacks, verbose=verbose, epochs=epochs, steps=batches)
        training = _Training(model, engine, feeder, one, fit_kwargs, batches)
        race = training.run(initial_epoch, epochs, found, user)
        one.finish()
    finally:
        feeder.close()
    outcome = _outcome(engine, machine, name, batches, user, found, race, training, setup,
                       time.monotonic() - began - setup)
    record_trials(StudySettings(batches, storage=storage, study_name=default_study_name("fit", name, name, machine)),
                  [t for t in _trials(training) if found.space.allows(t.config)], found.space,
                  _study_attributes(outcome))
    return model.history, outcome


def _outcome(engine, machine: MachineProfile, name: str, batches: int, user: LoaderConfig, found: Contenders,
             race: EpochRace, training: _Training, setup: float, seconds: float) -> TrainingOutcome:
    knobs = registry.knob_set(engine.name, engine.backend)
    chosen = race.winner()
    return TrainingOutcome(
        dataset_name=name, engine=engine.name, backend=engine.backend, machine=machine, epoch_batches=batches,
        chosen=chosen, baseline=user, claim=race.against(user), epochs=tuple(training.log), screen=found.screen,
        race_epochs={knobs.label(c): tuple(v) for c, v in race.samples.items() if v},
        race_left={knobs.label(c): wording.departure(why, knobs.label) for c, why in race.left.items()}
        | {knobs.label(c): why for c, why in {**race.failures, **training.failures}.items()},
        race_stopped_because=wording.epoch_race_stop(race.stop, race.bound, knobs.label) if race.stop else "",
        explored=race.explored, bound=race.bound, candidates_from=found.stored.study_name if found.stored else None,
        knobs=knobs.recorded(chosen, machine.start_method), setup_seconds=setup, training_seconds=seconds)


def _trials(training: _Training) -> list[TrialResult]:
    """Each setting that trained epochs as a trial, its value the median of those epochs' throughputs (the
    warm-up, which traced the step, left out), and each setting that failed."""
    rates: dict[LoaderConfig, list[float]] = {}
    for epoch in training.log:
        if epoch.role not in (EpochRole.WARM_UP, EpochRole.FAILED):
            rates.setdefault(epoch.config, []).append(training.batches / epoch.seconds)
    timed = [TrialResult(0, config, TrialStatus.OK, TrialOrigin.TRAINING, epoch_batches_per_second=summarize(values))
             for config, values in rates.items()]
    failed = [TrialResult(0, config, TrialStatus.FAILED, TrialOrigin.TRAINING, reason=reason)
              for config, reason in training.failures.items()]
    return timed + failed


def _study_attributes(outcome: TrainingOutcome) -> dict[str, str]:
    """What the stored study says of this training: its answer, for the next run to start from."""
    claim = outcome.claim
    return {"answer_config": json.dumps(to_dict(outcome.chosen)), "machine": outcome.machine.fingerprint,
            "recommendation": ", ".join(f"{k}={v!r}" for k, v in outcome.knobs.items()),
            "speedup": f"{claim.speedup:.2f}x the user's setting, {claim.interval_text()}" if claim else "",
            "source": "tuner.fit"}
