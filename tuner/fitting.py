"""``tuner.fit``: trains as ``model.fit`` would, tunes the loader on the training's own epochs
(``training.train``), and writes the report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reports.training import headline, write_training_report
from tuner.training import train

DEFAULT_FOLDER = Path("tune-loader-out") / "fit"


def fit(model: Any, x: Any, epochs: int = 1, *, callbacks: Sequence | None = None, verbose: Any = "auto",
        initial_epoch: int = 0, report_dir: str | Path | None = DEFAULT_FOLDER, storage: str | None = None,
        **fit_kwargs: Any):
    """``model.fit(x, epochs=epochs, ...)`` that races the loader's settings on its own epochs and trains the
    rest with the fastest; returns one ``History`` for all epochs.

    ``x`` is a ``keras.utils.PyDataset``, a tf-keras ``Sequence`` (with a
    tf-keras model) or a torch ``DataLoader``. ``callbacks``, ``verbose``,
    ``initial_epoch``, ``validation_data``, ``validation_freq``,
    ``validation_steps``, ``class_weight`` and ``shuffle`` work as in
    ``model.fit``; other ``fit`` arguments are refused. The study goes to
    ``storage`` (an Optuna URL; default ``report_dir/study.db``), and the
    contenders come from the latest answer stored there or in a CLI run's
    ``tune-loader-out/*/study.db``. ``report_dir=None`` writes no files.
    """
    folder = Path(report_dir) if report_dir is not None else None
    if storage is None and folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{folder.resolve() / 'study.db'}"
    cli_studies = [f"sqlite:///{path.resolve()}" for path in sorted(Path("tune-loader-out").glob("*/study.db"))
                   if folder is None or path.parent.resolve() != folder.resolve()]
    history, outcome = train(model, x, epochs, callbacks=callbacks, verbose=verbose, initial_epoch=initial_epoch,
                             storage=storage, look_in=cli_studies, **fit_kwargs)
    if folder is not None:
        paths = write_training_report(outcome, folder)
        if verbose != 0:
            print(f"tune-loader: {headline(outcome)} Report: {paths['html']}")
    return history
