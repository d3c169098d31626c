"""How the search's steps ended, as values: why the screen and the race stopped, why a setting left the race,
what the race timed and chose. The search records them; the advice reads them, and the sentences users read
are built from them in ``tuner/analysis/wording.py``."""

from __future__ import annotations

from dataclasses import dataclass, field

from tuner.core import LoaderConfig, TextEnum
from tuner.results import ChoiceBasis, Confirmation, Decision, RaceLoad


@dataclass(frozen=True)
class ScreenStop:
    """The screen timed what fit: of ``candidates``, ``out_of_time`` were left so that the race fits in the
    time budget, and ``beyond_reach`` were skipped as unable to reach the race (``decision.cannot_reach_race``)."""

    candidates: int
    out_of_time: int = 0
    beyond_reach: int = 0

    @property
    def unscreened(self) -> int:
        return self.out_of_time + self.beyond_reach


class RaceEnd(TextEnum):
    """Why the race stopped."""

    SETTLED = "settled"  # no question it answers was left open
    ROUNDS = "rounds"  # it ran the rounds allowed
    ALL_STOPPED = "all stopped"  # every Keras setting in it failed or hung
    TIME_BUDGET = "time budget"  # another round would have ended past the time budget


class OpenQuestion(TextEnum):
    """A question the race had not answered when it stopped."""

    NEAR_LEADER = "near leader"  # settings that could still beat the leader by more than the settled margin
    CLAIM = "claim"  # the claim against the defaults
    TF_DATA = "tf.data"  # tf.data against the leader


@dataclass(frozen=True)
class RaceStop:
    """Why the race stopped: ``leader`` is the answer when settled, else the leader the open questions are
    about; ``near`` counts the settings that could still beat it; ``rounds`` is the limit it ran to."""

    end: RaceEnd
    leader: LoaderConfig | None = None
    questions: tuple[OpenQuestion, ...] = ()
    near: int = 0
    rounds: int = 0

    @property
    def settled(self) -> bool:
        return self.end == RaceEnd.SETTLED


class LeaveKind(TextEnum):
    """Why a setting left the race before its end."""

    FAR_BELOW = "far below"  # far below the leader in the first round
    CLEARLY_SLOWER = "clearly slower"  # its upper bound against the leader fell below 1
    SETTLED = "settled"  # the answer was chosen, and it could not beat it by the settled margin
    CLAIM_DECIDED = "claim decided"  # the defaults: the claim against them was decided
    CANNOT_BEAT = "cannot beat"  # tf.data could not beat the leader by the settled margin
    LEAD_DECIDED = "lead decided"  # tf.data's lead over the leader was decided


@dataclass(frozen=True)
class Departure:
    """A setting that left the race: why, the setting it was compared with, and after how many rounds."""

    kind: LeaveKind
    than: LoaderConfig
    rounds: int


@dataclass(frozen=True)
class Verdict:
    """What the race recommends: ``chosen`` (the setting the evidence says is fastest, guarded against a
    material loss; the defaults when they are, or could well be, as fast), ``best`` (the best setting other
    than the defaults, which ``claim`` compares with them), ``decision`` (why, as values) and ``tf_data``
    (tf.data against ``chosen``)."""

    chosen: LoaderConfig
    best: LoaderConfig | None
    claim: Confirmation | None
    tf_data: Confirmation | None
    decision: Decision = Decision(ChoiceBasis.UNCONFIRMED)


@dataclass(frozen=True)
class Interleaved:
    """What the race timed: every setting's epoch throughput per round (a setting that left ran the first
    rounds), why each left or stopped, its verdict and why it ended."""

    samples: dict[LoaderConfig, tuple[float, ...]]
    peak_memory_bytes: dict[LoaderConfig, int]
    failures: dict[LoaderConfig, str]
    left: dict[LoaderConfig, Departure]
    verdict: Verdict
    stop: RaceStop
    load: RaceLoad = RaceLoad()
    rerun: dict[LoaderConfig, str] = field(default_factory=dict)  # the defaults' failure a rerun made good
    tf_data_reach: float | None = None  # tf.data sat out: the screen's best in-process setting over its best
    # tf.data sat out for time: three rounds with it would take this many seconds, of this many left
    tf_data_short: tuple[float, float] | None = None


@dataclass(frozen=True)
class PoolsNotTried:
    """Why the search left a kind of pool out, in words for the user (None: it was tried): processes it did
    not search, thread pools it recorded as infeasible without running them."""

    processes: str | None = None
    threads: str | None = None
