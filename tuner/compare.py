"""``tune-loader compare OLD.json NEW.json [--fail-below RATIO]``: two runs side by side, and a CI gate.

The gate compares the rates each run measured for its own answer (median batches per second of its race
epochs). Runs minutes apart carry the machine's drift, which the race's interleaving does not cancel
here, so a gate below about 0.9 leaves room for that noise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tuner import engines
from tuner.errors import TuneLoaderError
from tuner.results import Recommendation

EXIT_SLOWER = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tune-loader compare",
                                     description="Compare two results.json files; optionally fail when NEW is slower.")
    parser.add_argument("old", type=Path, metavar="OLD.json")
    parser.add_argument("new", type=Path, metavar="NEW.json")
    parser.add_argument("--fail-below", type=float, metavar="RATIO",
                        help="exit 1 when NEW's measured rate is below RATIO x OLD's (e.g. 0.9)")
    return parser


def load(path: Path) -> Recommendation:
    try:
        return Recommendation.from_json(path.read_text())
    except FileNotFoundError:
        raise TuneLoaderError(f"No such file: {path}. Expected a results.json written by tune-loader. "
                              f"Received: {path}") from None
    except (ValueError, KeyError, TypeError) as error:  # not JSON, another schema version, missing fields
        raise TuneLoaderError(f"{path} is not a results.json this tune-loader reads ({error}). "
                              f"Received: {path}") from None


def rows(old: Recommendation, new: Recommendation) -> list[tuple[str, str, str]]:
    """(label, OLD, NEW) lines of the comparison table."""
    def source(r: Recommendation) -> str:
        p = r.provenance
        return f"{p.source}" + (f" (sha256 {p.source_sha256[:12]})" if p.source_sha256 else "") if p else "unknown"

    def rate(r: Recommendation) -> str:
        spread = r.recommended_batches_per_second
        return f"{spread.median:.1f} ± {spread.mad:.1f} batches/s (n={spread.count})" if spread else "not measured"

    def claim(r: Recommendation) -> str:
        c = r.confirmation
        return f"{c.speedup:.2f}x the defaults, {c.interval_text()}" if c else "defaults kept"

    return [
        ("source", source(old), source(new)),
        ("started (UTC)", *(r.provenance.started_utc if r.provenance else "unknown" for r in (old, new))),
        ("machine", old.machine.fingerprint, new.machine.fingerprint),
        ("answer", engines.label_for(old)(old.config), engines.label_for(new)(new.config)),
        ("measured", rate(old), rate(new)),
        ("speed-up", claim(old), claim(new)),
    ]


def ratio(old: Recommendation, new: Recommendation) -> float:
    before, after = old.recommended_batches_per_second, new.recommended_batches_per_second
    if not (before and after):
        raise TuneLoaderError("Both runs must have measured their answer to be compared; a --quick run timed "
                              "nothing. Received: a results.json without measured rates")
    return after.median / before.median


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    old, new = load(args.old), load(args.new)
    width = max(len(old_text) for _, old_text, _ in rows(old, new))
    for label, old_text, new_text in [("", "OLD", "NEW")] + rows(old, new):
        print(f"{label:<14} {old_text:<{width}}  {new_text}")
    measured = ratio(old, new)
    print(f"\nNEW / OLD: {measured:.3f}x (medians of each run's race epochs for its own answer)")
    if args.fail_below is not None and measured < args.fail_below:
        print(f"NEW is slower than {args.fail_below} x OLD (--fail-below).")
        return EXIT_SLOWER
    return 0

