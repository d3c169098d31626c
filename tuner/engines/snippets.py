"""The answer as code to paste, one function per way of writing it: each knob set (``tuner.engines.knobs``)
lists its blocks, so the report, summary.md and the CLI print what the engine says, and name no engine.

Every function takes the ``Recommendation`` and reads only what it records; nothing here imports a
framework.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probes.profiles import DataKind

if TYPE_CHECKING:
    from tuner.results import Recommendation

# A module-level make_dataloader(**knobs) in the user's file (tuner.userfile): the answer is that call.
DATALOADER_FACTORY = "make_dataloader"
# A validation PyDataset is a second loader with its own knobs, and tune-loader times training only.
VALIDATION_NOTE = ("\n# validation_data=...: a validation PyDataset has its own workers, use_multiprocessing and "
                   "max_queue_size;\n# they were not tuned (Keras's defaults apply unless you set them).")


@dataclass(frozen=True)
class CodeBlock:
    """One way to write the answer: its ``title``, a plain-text ``note`` that follows the title in the
    report (before a colon), the ``code``, and ``after`` it a line of what was measured that way ("" for
    none). ``brief`` blocks are also printed by the CLI and summary.md; the report shows every block, with
    ``anchor`` as its id where one is given."""

    title: str
    note: str
    code: str
    brief: bool = True
    anchor: str = ""
    after: str = ""


def dataloader(answer: Recommendation, user_loader: bool) -> CodeBlock:
    """The DataLoader line: the user's own (``user_loader``), or one that hands a PyDataset's batch i to
    the workers."""
    if user_loader and answer.dataset_name == DATALOADER_FACTORY:
        title, line = "torch DataLoader", f"loader = {DATALOADER_FACTORY}({answer.knob_arguments()})\n"
    elif user_loader:
        title, line = "torch DataLoader", (f"loader = DataLoader(dataset, batch_size=..., "
                                           f"{answer.knob_arguments()})  # your other arguments as now\n")
    else:
        title, line = "Your PyDataset in a torch DataLoader", (
            f"from torch.utils.data import DataLoader\n\ndataset = {answer.dataset.class_name}(...)\n"
            "# batch i is dataset[i]; shuffle=True orders the batches anew every epoch, as fit does a PyDataset's\n"
            f"loader = DataLoader(dataset, batch_size=None, shuffle=True, {answer.knob_arguments()})\n")
    note = ", trained by Keras 3's fit" + (
        " (multiprocessing_context is the start method tuned under)" if answer.knob_values().get("num_workers") else "")
    return CodeBlock(title, note, native_threads(answer) + line + "model.fit(loader, epochs=...)")


def grain(answer: Recommendation) -> CodeBlock:
    """The answer as Grain's ``mp_prefetch`` on the user's pipeline (none: the pipeline as it is), or as a
    ``grain.DataLoader``'s arguments."""
    knobs = answer.knob_values()
    if answer.dataset.class_name == "DataLoader":
        workers, buffer = knobs.get("worker_count", 0), knobs.get("worker_buffer_size", 1)
        flags = ("from absl import flags\n\nflags.FLAGS.mark_as_parsed()  # grain 0.2.18 reads absl flags "
                 "(google/grain#1355)\n") if workers else ""
        spawn = "  # in a script: under if __name__ == '__main__', as spawn needs" if workers else ""
        code = (f"{flags}loader = grain.DataLoader(data_source=..., sampler=..., operations=...,  # as now\n"
                f"                           worker_count={workers}, worker_buffer_size={buffer})\n"
                f"model.fit(loader, epochs=...){spawn}")
        return CodeBlock("Grain", " (grain.DataLoader arguments)", native_threads(answer) + code)
    if not knobs.get("worker_count"):
        code = ("dataset = make_dataset()  # your Grain pipeline, as now, without mp_prefetch\n"
                "model.fit(dataset, epochs=...)")
        return CodeBlock("Grain", ": no mp_prefetch", native_threads(answer) + code)
    code = (
        "import grain\nfrom absl import flags\n\n"
        "flags.FLAGS.mark_as_parsed()  # grain 0.2.18's mp_prefetch reads absl flags (google/grain#1355)\n"
        "dataset = ...  # your MapDataset: .map(...).batch(...), as now\n"
        "dataset = dataset.to_iter_dataset().mp_prefetch(  # your read options in to_iter_dataset(), if any\n"
        f"    grain.MultiprocessingOptions(num_workers={knobs['worker_count']}, "
        f"per_worker_buffer_size={knobs['worker_buffer_size']}))\n"
        "model.fit(dataset, epochs=...)  # in a script: under if __name__ == '__main__', as spawn needs")
    note = " (mp_prefetch: a grain.DataLoader takes the same as worker_count and worker_buffer_size)"
    return CodeBlock("Grain", note, native_threads(answer) + code)


def keras3(answer: Recommendation) -> CodeBlock:
    """The three knobs as a Keras 3 PyDataset takes them."""
    c, name = answer.config, answer.dataset.class_name
    if answer.dataset.takes_knob_arguments is False:
        code = (f"dataset = ...  # your {name}, built as now\n"
                f"dataset.workers = {c.workers}\ndataset.use_multiprocessing = {c.use_multiprocessing}\n"
                f"dataset.max_queue_size = {c.max_queue_size}\nmodel.fit(dataset, epochs=...){VALIDATION_NOTE}")
    else:
        code = f"dataset = {name}(..., {c.as_kwargs()})\nmodel.fit(dataset, epochs=...){VALIDATION_NOTE}"
    return CodeBlock("Keras 3", " (PyDataset constructor arguments; fit() rejects them)", native_threads(answer) + code)


def tf_keras(answer: Recommendation, tuned_under: bool) -> CodeBlock:
    """The three knobs as tf-keras's ``fit`` and ``fit_generator`` take them: the answer itself where it was
    ``tuned_under`` tf-keras, else the same settings for a Keras 2 reader (in the report only)."""
    kwargs = answer.config.as_kwargs()
    if answer.dataset.kind == DataKind.GENERATOR:
        name = answer.dataset_name
        code = (f"model.fit_generator({name}(), steps_per_epoch=..., epochs=..., {kwargs})\n"
                f"# or, not deprecated:\nmodel.fit({name}(), steps_per_epoch=..., epochs=..., {kwargs})")
    else:
        code = (f"model.fit(sequence, epochs=..., {kwargs})\n"
                f"# deprecated, forwards to fit:\nmodel.fit_generator(sequence, epochs=..., {kwargs})")
    note = " (Keras 2)" + (", tuned under it" if tuned_under else "") + ": fit / fit_generator arguments"
    return CodeBlock("tf-keras", note, native_threads(answer) + code, brief=tuned_under)


def moving_to_keras3(answer: Recommendation) -> CodeBlock:
    """Legacy data as the Keras 3 PyDataset it would become, with the same knobs."""
    body = ("        return ...  # the batch your generator yields as its index-th (no shared iterator state)"
            if answer.dataset.kind == DataKind.GENERATOR else "        return ...  # your Sequence's __getitem__, unchanged")
    code = (
        "import keras\n\n"
        "class MyData(keras.utils.PyDataset):\n"
        "    def __init__(self, ..., **kwargs):\n"
        "        super().__init__(**kwargs)  # workers, use_multiprocessing, max_queue_size\n"
        "        ...\n\n"
        "    def __len__(self):\n"
        "        return ...  # batches per epoch\n\n"
        "    def __getitem__(self, index):\n"
        f"{body}\n\n"
        f"dataset = MyData(..., {answer.config.as_kwargs()})\n"
        "model.fit(dataset, epochs=...)  # fit() itself no longer takes the three knobs"
    )
    note = ", where the knobs become PyDataset constructor arguments (fit() rejects them)" + (
        ", and a plain generator must become a PyDataset to run in parallel at all"
        if answer.dataset.kind == DataKind.GENERATOR else "")
    return CodeBlock("Moving to Keras 3", note, native_threads(answer) + code, anchor="migration",
                     after=_measured_as_keras3(answer))


def _measured_as_keras3(answer: Recommendation) -> str:
    """The same data tuned as a Keras 3 PyDataset (``--compare-keras3``), "" when it was not."""
    k = answer.keras3
    if k is None:
        return ""
    rate = f", {k.batches_per_second.median:.1f} batches/s" if k.batches_per_second else ""
    ratio = (f": {k.ratio:.2f}x this tf-keras answer [{k.ratio_low:.2f}, {k.ratio_high:.2f}] (separate runs)"
             if k.ratio else "")
    return f"Measured as a Keras 3 PyDataset: {k.config.label()}{rate}{ratio}; model: {k.model_description}"


def tf_data(answer: Recommendation) -> CodeBlock:
    """The same batch code in the tf.data pipeline the race timed."""
    dtypes = ", ".join(f"tf.{name}" for name in re.findall(r"(\w+)\[", answer.dataset.batch_structure))
    code = (
        "import tensorflow as tf\n\n"
        f"dataset = {answer.dataset.class_name}(...)\n\n"
        "def load(index):\n    return dataset[int(index)]\n\n"
        "pipeline = (\n"
        "    tf.data.Dataset.range(len(dataset))\n"
        f"    .map(lambda i: tuple(tf.py_function(load, [i], Tout=[{dtypes}])),\n"
        "         num_parallel_calls=tf.data.AUTOTUNE)\n"
        "    .prefetch(tf.data.AUTOTUNE)\n"
        ")\n"
        "model.fit(pipeline, epochs=...)"
    )
    return CodeBlock("tf.data (measured faster)", " than the recommended setting, over the same batch code", code)


def native_threads(answer: Recommendation) -> str:
    """The native-thread limit as code: set first thing in every batch, in whichever worker makes it (as
    tune-loader timed it); "" when the libraries keep their default."""
    limit = answer.config.native_threads
    if limit is None:
        return ""
    if answer.dataset.kind == DataKind.GRAIN:
        where = ("def your_map_function(record):  # each .map() of your Grain pipeline\n"
                 f"    threadpool_limits(limits={limit})  # first thing, in whichever process runs it\n"
                 "    ...  # your code, unchanged")
    elif answer.dataset.kind == DataKind.GENERATOR:
        where = (f"def {answer.dataset_name}(...):  # your generator\n    while ...:\n"
                 f"        threadpool_limits(limits={limit})  # before each batch's work\n        yield ...")
    else:
        where = (f"class {answer.dataset.class_name}(...):  # your dataset, as now\n"
                 "    def __getitem__(self, index):\n"
                 f"        threadpool_limits(limits={limit})  # first thing in every batch\n"
                 "        ...  # your batch code, unchanged")
    return (f"# BLAS/OpenMP threads per worker: {limit} (pip install threadpoolctl)\n"
            f"from threadpoolctl import threadpool_limits\n\n{where}\n\n")
