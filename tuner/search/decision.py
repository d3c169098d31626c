"""The race's rules, in one place: who reaches the race, who leaves it, when it is over, what it chose, and
how sure its claim against the defaults is. The race (``race.py``), the screen's reserve (``study.py``) and
the advice (``analysis/advice.py``) all read them from here.

Every rule compares settings timed in the same rounds (``Rounds``: each setting's epoch throughputs, one per
round, from the race's first round on; a setting that left has only the first ones). A round times every
setting back to back, so the per-round log ratio of two settings cancels the machine's drift. Two or three
rounds say little about their own spread, so every comparison also uses what else the race knows of it
(``Noise``): the spread the other Keras settings' pairs show (a randomized block design, with rounds as
blocks), and the spread of the epochs inside each setting's fits, which is where inline training's
autotuner waits show (some epochs wait, some do not).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from scipy.stats import t as student_t

from probes.stats import RatioInterval, paired_log_interval
from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.outcomes import Verdict
from tuner.results import ChoiceBasis, Confirmation, Decision, TrialResult, best_rate, completed

Rounds = Mapping[LoaderConfig, Sequence[float]]

# Screening: one cheap window each; the fastest few within this share of the best screen reach the race.
SCREEN_MARGIN = 0.20
FINALISTS = 4
# One screen window of the same setting read 67 to 88 batches/s in three tunes of volume_patches (the low
# one 24% under the high): of the pools of a kind screened within this of the kind's fastest, the simplest
# always races, even from below the fastest few.
SCREEN_NOISE = 0.25
# tf.data runs the batch code on threads of the training process. The most it ran over the best thread pool
# or inline setting in benchmarks/truth.py is 1.32x (legacy_sequence); it races only where this much over
# the best of those reaches the screen's best.
TF_DATA_MOST_GAIN = 1.5
# Racing: a setting whose one-sided upper bound against the leader is below 1 is clearly slower and leaves.
ELIMINATION_CONFIDENCE = 0.95
# The best-arm question is settled when no setting left in the race can beat the leader by more than this,
# by a one-sided bound at this confidence: a setting it misses costs at most the margin.
SETTLED_MARGIN = 0.03
SETTLED_CONFIDENCE = 0.90
# Of the settings the race cannot tell apart, the simplest within this of the leader's mean is the answer.
NEAR_LEADER = 0.01
# The choice over the defaults (docs/search.md, "The choice and the claim"): the best expected pool is
# recommended when it is expected at least MIN_EXPECTED_GAIN faster and faster with at least this
# probability (four to one), decided or not; below either, the defaults could well be as fast. The harm
# guard: a pool whose one-sided HARM_CONFIDENCE lower bound against the defaults is under HARM_FLOOR (a
# 10% loss is within what the evidence allows) is set aside unless it is expected LARGE_GAIN faster.
MIN_EXPECTED_GAIN = 0.02
MIN_PROBABILITY_FASTER = 0.80
HARM_CONFIDENCE = 0.95
HARM_FLOOR = 0.90
LARGE_GAIN = 1.5
# The claim against the defaults (and tf.data's against the answer): a two-sided 90% interval, so that a
# setting is recommended over the defaults at 95% one-sided confidence that it is faster; decided when it
# excludes 1 within +-10%, or includes 1 within +-5% (equivalent: the simpler side wins).
CLAIM_CONFIDENCE = 0.90
DECIDED_WITHIN = 0.10
EQUIVALENT_WITHIN = 0.05
# A round's log ratio is never taken as steadier than 1%: Keras's own epochs vary by about that.
NOISE_FLOOR = 0.01
# No setting leaves and nothing is decided before this many rounds: one round has no spread to judge by,
# except a setting this far below the leader in the first (tf.data, say), many times any round's noise.
FIRST_VERDICT_ROUND = 2
FAR_BELOW = 0.6
MAX_ROUNDS = 30
# The screen stops while what is left of the time budget still fits a race of this many rounds (at most
# this share of the budget): enough for the claim against the defaults to be decided at a clear gap.
RESERVE_ROUNDS = 3
MAX_RESERVE_SHARE = 0.5


def finalists(screened: Sequence[TrialResult], keep: Collection[LoaderConfig] = (), *,
              fit_seconds: Callable[[TrialResult], float] | None = None, seconds: float = math.inf
              ) -> list[LoaderConfig]:
    """The settings that race: the ``FINALISTS`` fastest screened within ``SCREEN_MARGIN`` of the fastest,
    and those in ``keep`` (the defaults, which the claim needs) that were screened and did not fail.

    With ``fit_seconds`` (one race fit of a screened setting), the slowest screened leave until
    ``RESERVE_ROUNDS`` rounds of them all fit in ``seconds`` (tf.data gets what they leave:
    ``tf_data_fits``); ``keep`` and one thread pool and one process pool always race (one window each
    ranks the kinds too noisily to drop one: whitened_windows lost 4 threads at 1.91x so): the simplest
    within ``SCREEN_NOISE`` of its kind's fastest screened, fastest few or not, as the race's own answer is
    the simplest among equals (volume_patches raced 8 threads, screened 4% and later 15% over 2 threads,
    and answered at 0.88 of 2 threads).
    Where epochs are long, five settings at two rounds each decide less than three settings at three
    rounds: the claim and the choice both need rounds.
    """
    ranked = sorted(completed(screened), key=lambda t: -t.epoch_batches_per_second.median)
    if not ranked:
        return []
    floor = (1.0 - SCREEN_MARGIN) * ranked[0].epoch_batches_per_second.median
    within = [t for t in ranked if t.epoch_batches_per_second.median >= floor]
    kept = [t for t in ranked if t.config in keep]
    rivals = [t for t in within if t.config not in keep]
    protected = [_simplest_near_fastest([t for t in rivals if t.config.use_multiprocessing == processes])
                 for processes in sorted({t.config.use_multiprocessing for t in rivals})]
    places = FINALISTS - sum(t in kept for t in within[:FINALISTS])  # the defaults among the fastest take one
    droppable = [t for t in rivals if t not in protected][:max(0, places - len(protected))]
    while fit_seconds and droppable and (
            RESERVE_ROUNDS * sum(map(fit_seconds, protected + droppable + kept)) > seconds):
        droppable.pop()
    chosen = [t for t in ranked if t in protected or t in droppable or t in within[:FINALISTS] and t in kept]
    return [t.config for t in chosen + [t for t in kept if t not in chosen]]


def _simplest_near_fastest(ranked: Sequence[TrialResult]) -> TrialResult:
    """Of screened settings fastest first, the simplest within ``SCREEN_NOISE`` of the first."""
    floor = (1.0 - SCREEN_NOISE) * ranked[0].epoch_batches_per_second.median
    return min((t for t in ranked if t.epoch_batches_per_second.median >= floor), key=lambda t: t.config.simplicity)


def cannot_reach_race(config: LoaderConfig, screened: Sequence[TrialResult]) -> bool:
    """Whether ``config`` could not reach the race however well it scaled: a screened pool of its family
    with fewer batches in flight ran at ``r``, ``k`` times as many make at most ``k r``, and that is under
    the finalists' floor (``SCREEN_MARGIN`` below the fastest screened). On whitened_windows 2 processes at
    the libraries' default BLAS threads ran 6.4 b/s against 33 at one thread, and screening 4 and 8 of them
    cost 9 s of the race's time."""
    timed = completed(screened)
    bounds = [t.epoch_batches_per_second.median * config.effective_parallelism / t.config.effective_parallelism
              for t in timed if t.config.parallel and t.config.family == config.family
              and t.config.effective_parallelism < config.effective_parallelism]
    return bool(bounds) and min(bounds) < (1.0 - SCREEN_MARGIN) * best_rate(timed)


def tf_data_reach(screened: Sequence[TrialResult]) -> float:
    """How fast the screen's best setting inside the training process (inline or a thread pool) ran, over
    its best setting of all. tf.data runs ``__getitem__`` on threads of that process, so it leads only
    where such a setting comes within ``TF_DATA_MOST_GAIN`` of the best (1.0 where nothing ran)."""
    best = best_rate(screened)
    in_process = best_rate(t for t in screened if not t.config.use_multiprocessing)
    return in_process / best if best else 1.0


def races_tf_data(screened: Sequence[TrialResult]) -> bool:
    """tf.data races only where it could change the answer: where ``TF_DATA_MOST_GAIN`` over the best
    setting in the training process reaches the best setting screened."""
    return TF_DATA_MOST_GAIN * tf_data_reach(screened) >= 1.0


def tf_data_fits(round_seconds: float, tf_data_seconds: float, seconds: float) -> bool:
    """Whether ``RESERVE_ROUNDS`` rounds of the finalists (``round_seconds`` each) with tf.data's fit added
    fit in ``seconds``: tf.data gets the time the Keras settings leave. Its fit costs about as much as
    inline's. On whitened_windows (2.7 s epochs raced whole) two rounds with it took 38 s where 23 s were
    left, and the tune 66 s; on log_lines (3.9 s epochs) four contenders and tf.data had time for two rounds,
    and 2 processes at 1.16x were left undecided against inline in 2 of 3 tunes. The claim and the choice
    need the rounds more than tf.data's challenge does (it led the best thread pool by 1.32x at most in
    ``benchmarks/truth.py``)."""
    return RESERVE_ROUNDS * (round_seconds + tf_data_seconds) <= seconds


def shared(rounds: Rounds, a: LoaderConfig, b: LoaderConfig) -> tuple[Sequence[float], Sequence[float]]:
    """``a``'s and ``b``'s epochs from the rounds that timed both (a setting leaves for good, so those are
    the first rounds of the one that left first)."""
    kept = min(len(rounds.get(a, ())), len(rounds.get(b, ())))
    return tuple(rounds[a][:kept]) if kept else (), tuple(rounds[b][:kept]) if kept else ()


def leader(rounds: Rounds, racing: Collection[LoaderConfig]) -> LoaderConfig:
    """The setting with the highest mean log throughput among ``racing`` (which have all run every round
    since the race began)."""
    return max(racing, key=lambda config: statistics.fmean(math.log(v) for v in rounds[config]))


@dataclass(frozen=True)
class Noise:
    """What a comparison knows of a round's noise beyond its own rounds: the pooled standard deviation of
    a round's log ratio (``pooled``, with ``df`` degrees of freedom), and per setting the variance of a
    round's log mean that the spread of the epochs inside its fits implies (``within``)."""

    pooled: float = 0.0
    df: int = 0
    within: Mapping[LoaderConfig, float] = field(default_factory=dict)

    def floor(self, a: LoaderConfig, b: LoaderConfig) -> float:
        """The least a round's log ratio of ``a`` and ``b`` can vary: what their fits' epochs show, and
        never under ``NOISE_FLOOR``."""
        return max(NOISE_FLOOR, math.sqrt(self.within.get(a, 0.0) + self.within.get(b, 0.0)))


def pooled_noise(rounds: Rounds, reference: LoaderConfig, others: Collection[LoaderConfig],
                 within: Mapping[LoaderConfig, float] | None = None) -> Noise:
    """The standard deviation of one round's log ratio against ``reference``, pooled over ``others``, with
    its degrees of freedom (and ``within``, each setting's within-fit variance, kept beside it)."""
    squares, df = 0.0, 0
    for config in others:
        if config == reference:
            continue
        a, b = shared(rounds, config, reference)
        if len(a) < 2:
            continue
        logs = [math.log(x / y) for x, y in zip(a, b)]
        mean = statistics.fmean(logs)
        squares += sum((value - mean) ** 2 for value in logs)
        df += len(logs) - 1
    return Noise(math.sqrt(squares / df) if df else 0.0, df, dict(within or {}))


def compare(rounds: Rounds, a: LoaderConfig, b: LoaderConfig, noise: Noise = Noise(), *,
            confidence: float = CLAIM_CONFIDENCE, one_sided: bool = False) -> Confirmation | None:
    """``a`` over ``b`` over the rounds that timed both, with a t interval (``paired_log_interval``); None
    before ``FIRST_VERDICT_ROUND`` shared rounds."""
    interval = _interval(rounds, a, b, noise, confidence, one_sided=one_sided)
    return _confirmation(rounds, a, b, interval) if interval else None


def _interval(rounds: Rounds, a: LoaderConfig, b: LoaderConfig, noise: Noise, confidence: float = CLAIM_CONFIDENCE,
              *, one_sided: bool = False) -> RatioInterval | None:
    x, y = shared(rounds, a, b)
    if len(x) < FIRST_VERDICT_ROUND:
        return None
    return paired_log_interval(x, y, confidence, one_sided=one_sided, pooled_noise=noise.pooled,
                               pooled_df=noise.df, noise_floor=noise.floor(a, b))


def _confirmation(rounds: Rounds, a: LoaderConfig, b: LoaderConfig, interval: RatioInterval) -> Confirmation:
    x, y = shared(rounds, a, b)
    return Confirmation(tuple(x), tuple(y), interval.ratio, interval.low, interval.high, interval.confidence)


def clearly_slower(rounds: Rounds, config: LoaderConfig, than: LoaderConfig, pooled: Noise) -> bool:
    """True when ``config``'s one-sided upper bound against ``than`` is below 1."""
    bound = compare(rounds, config, than, pooled, confidence=ELIMINATION_CONFIDENCE, one_sided=True)
    return bound is not None and bound.speedup_high < 1.0


def could_beat(rounds: Rounds, config: LoaderConfig, than: LoaderConfig, pooled: Noise) -> bool:
    """True while ``config`` may still be more than ``SETTLED_MARGIN`` faster than ``than`` (its one-sided
    upper bound at ``SETTLED_CONFIDENCE`` reaches that far, or too few rounds bound it)."""
    bound = compare(rounds, config, than, pooled, confidence=SETTLED_CONFIDENCE, one_sided=True)
    return bound is None or bound.speedup_high >= 1.0 + SETTLED_MARGIN


def far_below(rounds: Rounds, config: LoaderConfig, than: LoaderConfig) -> bool:
    """True when ``config``'s first round ran under ``FAR_BELOW`` of ``than``'s."""
    a, b = shared(rounds, config, than)
    return bool(a) and a[0] < FAR_BELOW * b[0]


def decided(confirmation: Confirmation | None) -> bool:
    """True when more rounds would not change what is said: the interval excludes 1 within +-10%, or
    includes 1 within +-5%."""
    if confirmation is None:
        return False
    excludes_one = confirmation.speedup_low > 1.0 or confirmation.speedup_high < 1.0
    return confirmation.half_width <= (DECIDED_WITHIN if excludes_one else EQUIVALENT_WITHIN)


def choice(rounds: Rounds, candidates: Collection[LoaderConfig]) -> LoaderConfig | None:
    """The simplest of ``candidates`` whose mean is within ``NEAR_LEADER`` of the fastest candidate's, from
    the rounds every one of them ran: settings this close swap places from run to run, and the simplest
    costs the least memory and contention."""
    timed = [config for config in candidates if rounds.get(config)]
    if not timed:
        return None
    kept = min(len(rounds[config]) for config in timed)
    means = {config: statistics.fmean(math.log(v) for v in rounds[config][:kept]) for config in timed}
    best = max(means.values())
    return min((c for c, m in means.items() if m >= best + math.log(1.0 - NEAR_LEADER)), key=lambda c: c.simplicity)


def verdict(rounds: Rounds, candidates: Collection[LoaderConfig], tf_data: LoaderConfig | None = None,
            pooled: Noise = Noise(), round_seconds: Mapping[LoaderConfig, float] | None = None) -> Verdict:
    """The race's answer among the Keras ``candidates`` still racing at its end (or every one raced, when it
    ended before any left).

    The answer is a decision under uncertainty, separate from the claim
    (docs/search.md, "The choice and the claim"): the pool with the best
    expected throughput (``choice``) that passes the harm guard
    (``_guarded_best``) is recommended over the defaults when it is worth
    it (``_worth``), whether or not its claim is decided. tf.data is judged
    against what is recommended. ``pooled`` is the race's last estimate of
    a round's noise; ``round_seconds`` what one fit of each setting took, to
    say what deciding the claim would cost.
    """
    raced_pools = [config for config in rounds if config not in (KERAS_DEFAULTS, tf_data)]
    pools = [config for config in candidates if config != KERAS_DEFAULTS] or raced_pools
    if not rounds.get(KERAS_DEFAULTS):  # the defaults failed in the race: nothing to keep instead
        chosen = choice(rounds, candidates) or KERAS_DEFAULTS
        return Verdict(chosen, chosen, None, _challenge(rounds, tf_data, chosen, pooled),
                       Decision(ChoiceBasis.DEFAULTS_UNTIMED))
    best, guarded = _guarded_best(rounds, pools, pooled)
    interval = _interval(rounds, best, KERAS_DEFAULTS, pooled) if best is not None else None
    claim = _confirmation(rounds, best, KERAS_DEFAULTS, interval) if interval else None
    if claim is None:
        basis, chosen = ChoiceBasis.UNCONFIRMED, KERAS_DEFAULTS
    else:
        worth = best != guarded and _worth(interval)
        chosen = best if worth else KERAS_DEFAULTS
        basis = (ChoiceBasis.DECIDED_FASTER if claim.significant else ChoiceBasis.LIKELIEST_FASTER) if worth else (
            ChoiceBasis.HARM_GUARD if guarded else ChoiceBasis.DEFAULTS_AS_FAST)
    seconds = sum((round_seconds or {}).get(config, 0.0) for config in (best, KERAS_DEFAULTS)) or None
    decision = Decision(basis, interval.probability_above(1.0) if interval else None,
                        rounds_to_decide(interval) if interval and not decided(claim) else None, seconds, guarded)
    return Verdict(chosen, best, claim, _challenge(rounds, tf_data, chosen, pooled), decision)


def _guarded_best(rounds: Rounds, pools: Sequence[LoaderConfig], pooled: Noise
                  ) -> tuple[LoaderConfig | None, LoaderConfig | None]:
    """The pool with the best expected throughput (``choice``), unless the harm guard sets it aside: a pool
    worth recommending (``_worth``) whose one-sided lower bound against the defaults at ``HARM_CONFIDENCE``
    is under ``HARM_FLOOR`` and whose expected gain is under ``LARGE_GAIN``; the next best is then looked at.
    Returns the pool (the first one set aside when every worthy pool was) and the first one set aside."""
    left, guarded = list(pools), None
    while left:
        best = choice(rounds, left)
        interval = _interval(rounds, best, KERAS_DEFAULTS, pooled)
        if interval is None or not _worth(interval):
            return best, guarded
        bound = _interval(rounds, best, KERAS_DEFAULTS, pooled, HARM_CONFIDENCE, one_sided=True)
        if bound.low >= HARM_FLOOR or bound.ratio >= LARGE_GAIN:
            return best, guarded
        guarded = guarded or best
        left.remove(best)
    return guarded, guarded


def _worth(interval: RatioInterval) -> bool:
    """A pool is worth recommending over the defaults when it is expected at least ``MIN_EXPECTED_GAIN``
    faster and faster with probability ``MIN_PROBABILITY_FASTER``: else the defaults could well be as fast."""
    return interval.ratio >= 1.0 + MIN_EXPECTED_GAIN and interval.probability_above(1.0) >= MIN_PROBABILITY_FASTER


def rounds_to_decide(interval: RatioInterval) -> int | None:
    """How many interleaved rounds would decide a claim at the noise measured: its interval excluding 1
    within +-``DECIDED_WITHIN`` at the gain measured, or holding 1 within +-``EQUIVALENT_WITHIN``, whichever
    comes first, with the degrees of freedom those rounds would bring. None past ``MAX_ROUNDS``: then the
    gap is inside the run-to-run noise."""
    gain = abs(math.log(interval.ratio))
    reach = max(min(gain, math.log(1.0 + DECIDED_WITHIN)), math.log(1.0 + EQUIVALENT_WITHIN) - gain)
    for rounds in range(max(FIRST_VERDICT_ROUND, interval.rounds + 1), MAX_ROUNDS + 1):
        quantile = float(student_t.ppf((1.0 + CLAIM_CONFIDENCE) / 2.0, max(rounds - 1, interval.df)))
        if quantile * interval.noise / math.sqrt(rounds) < reach:
            return rounds
    return None


def _challenge(rounds: Rounds, tf_data: LoaderConfig | None, chosen: LoaderConfig,
               pooled: Noise) -> Confirmation | None:
    """tf.data against the answer, when the race timed it."""
    return compare(rounds, tf_data, chosen, pooled) if tf_data is not None and rounds.get(tf_data) else None
