import base64
import dataclasses
import re

import pandas as pd

from probes.profiles import StartCost
from reports import render_html, trials_frame, write_reports
from reports.plotdata import plot_data
from tests import builders
from tuner import engines
from tuner.core import KERAS_DEFAULTS, EngineName, LoaderConfig
from tuner.engines.knobs import KERAS_KNOBS

EVIL = "<script>alert(1)</script>"


def test_report_files_are_written_and_self_contained(tmp_path):
    paths = write_reports(builders.recommendation(), tmp_path)
    html = paths["html"].read_text()
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert len(images) == 6
    assert all(b"<svg" in base64.b64decode(image)[:500] for image in images)
    assert 'src="http' not in html and "<link" not in html
    assert "8 threads, queue 16" in html
    assert "6.60x" in html and "[6.30, 6.90]" in html
    assert "The screen ended because it screened all 4 candidates" in html
    race = html[html.index("<h2>The race</h2>"):html.index("<h2>The screen</h2>")]
    assert "The race settled: it stopped because no setting left in it could beat the answer by more than 3%" in race
    assert "300.0, 305.0, 298.0" in race and "the claim against them was decided" in race
    frame = pd.read_csv(paths["csv"])
    assert list(frame["status"]) == ["ok", "ok", "ok", "failed"]
    assert frame.loc[3, "reason"] == "timed out after 30 s"
    markdown = paths["markdown"].read_text()
    assert markdown.startswith("### tune-loader: ShardDataset") and "**Recommended: 8 threads, queue 16**" in markdown
    assert "| Speed-up vs defaults | 6.60x" in markdown and "```python" in markdown and "sha256 abababababab" in markdown
    windows = pd.read_csv(paths["windows"])
    assert len(windows) == sum(len(t.windows) for t in builders.recommendation().trials)
    assert set(windows["trial"]) <= set(frame["trial"]) and (windows["epoch_seconds"] > 0).all()


def test_a_run_that_timed_nothing_still_writes_csv_files_pandas_can_read(tmp_path):
    quick = dataclasses.replace(builders.recommendation(), measured=False, confirmation=None, trials=())
    paths = write_reports(quick, tmp_path)
    assert pd.read_csv(paths["csv"]).empty and "workers" in pd.read_csv(paths["csv"]).columns
    assert pd.read_csv(paths["windows"]).empty


def test_the_report_names_its_provenance(tmp_path):
    traced = builders.recommendation()
    html = write_reports(traced, tmp_path)["html"].read_text()
    header = html[html.index('id="origin"'):html.index('id="summary"')]
    assert "tune-loader 0.1.0" in header and "abababababab" in header
    section = html[html.index('id="provenance"'):]
    for fragment in ("0.1.0", "2026-12-02T06:00:00+00:00", "tune-loader my_gen.py --trials 4", "/data/my_gen.py",
                     "ab" * 32, traced.machine.fingerprint):
        assert fragment in section, fragment


def test_user_strings_are_escaped_in_the_report(tmp_path):
    recommendation = builders.recommendation(class_name=EVIL, reason_text=f"ValueError: {EVIL}")
    html = write_reports(recommendation, tmp_path)["html"].read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_plot_data_tracks_the_best_so_far_and_kinds():
    data = plot_data(builders.recommendation())
    assert [p.kind for p in data.points] == ["inline", "processes", "threads", "processes"]
    assert data.best_so_far == ((0, 45.0), (1, 80.0), (2, 300.0), (3, 300.0))
    assert data.default_throughput == 45.0


def test_trial_and_worker_axes_are_labelled_with_whole_numbers():
    import matplotlib.pyplot as plt

    from reports import plots

    data = plot_data(builders.recommendation())
    for draw in (plots._history, plots._by_workers, plots._memory):
        figure = draw(data)
        figure.canvas.draw()
        ticks = figure.axes[0].get_xticks()
        plt.close(figure)
        assert all(float(tick).is_integer() for tick in ticks), (draw.__name__, ticks)


def test_a_legacy_generator_report_leads_with_tf_keras_and_shows_the_keras3_rewrite(tmp_path):
    recommendation = builders.recommendation(engine="tf-keras", kind="generator", class_name="csv_batches")
    write_reports(recommendation, tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert html.index("<strong>tf-keras</strong> (Keras 2), tuned under it") < html.index('id="migration"')
    assert "model.fit_generator(make_dataset(), steps_per_epoch=..." in html
    assert "class MyData(keras.utils.PyDataset)" in html and "must become a PyDataset" in html
    assert 'id="duplicated"' not in html


def test_a_ceiling_raised_by_a_measurement_names_the_setting_and_round_trips(tmp_path):
    import dataclasses
    import json

    from probes.serde import from_dict
    from tuner.results import Recommendation

    base = builders.recommendation()
    raised = dataclasses.replace(base, ceiling=dataclasses.replace(base.ceiling, batches_per_second=600.0,
                                                                     raised_by="16 processes, queue 10 (n=2 windows)"))
    paths = write_reports(raised, tmp_path)
    assert "raised to what 16 processes, queue 10 (n=2 windows) measured" in paths["html"].read_text()
    assert "raised to what" not in write_reports(base, tmp_path / "plain")["html"].read_text()
    loaded = from_dict(Recommendation, json.loads(paths["json"].read_text()))
    assert loaded.ceiling.raised_by == "16 processes, queue 10 (n=2 windows)"


def test_the_speed_up_card_says_what_was_measured(tmp_path):
    measured = builders.recommendation()
    quick = dataclasses.replace(measured, measured=False, confirmation=None)
    # the race could not time the best setting, so recommend() kept the defaults
    unconfirmed = dataclasses.replace(measured, confirmation=None, config=KERAS_DEFAULTS)
    defaults_best = dataclasses.replace(measured, confirmation=None, best_tried=KERAS_DEFAULTS, config=KERAS_DEFAULTS)
    html = {name: write_reports(r, tmp_path / name)["html"].read_text()
            for name, r in [("quick", quick), ("unconfirmed", unconfirmed), ("defaults", defaults_best)]}
    assert "not measured (--quick" in html["quick"] and "the defaults were the best" not in html["quick"]
    assert "data:image/" not in html["quick"] and "nothing to plot" in html["quick"]  # not six empty axes
    assert "not confirmed side by side" in html["unconfirmed"] and "the defaults were the best" not in html["unconfirmed"]
    assert "1.00x: the defaults were the best measured" in html["defaults"]


def test_the_terminal_and_the_html_render_the_same_summary(tmp_path):
    from rich.console import Console

    from reports.summary import summary_rows
    from tuner.cli import print_summary

    answer = builders.recommendation()
    console = Console(record=True, width=400)
    print_summary(console, answer, tmp_path)
    text, html = console.export_text(), write_reports(answer, tmp_path)["html"].read_text()
    for row in summary_rows(answer):
        assert row.label in text and row.value in text
        assert html_escape(row.value) in html, row.label


def html_escape(text):
    import html

    return html.escape(text, quote=True).replace("&#x27;", "&#39;")


def test_the_terminal_summary_says_when_the_best_setting_was_not_confirmed(tmp_path):
    from rich.console import Console

    from tuner.cli import print_summary

    console = Console(record=True, width=200)
    unconfirmed = dataclasses.replace(builders.recommendation(), confirmation=None, config=KERAS_DEFAULTS)
    print_summary(console, unconfirmed, tmp_path)
    text = console.export_text()
    assert "not confirmed side by side" in text and "defaults were the best" not in text


def test_the_terminal_summary_prints_square_brackets_in_names_and_reasons_as_written(tmp_path):
    from rich.console import Console

    from tuner.cli import print_summary

    failure = "KeyError: 7 (at shards.py, line 9, in __getitem__; _SHARED_SEQUENCES[uid][i] raised it)"
    answer = builders.recommendation(class_name="Shards[bold]", reason_text=failure)
    answer = dataclasses.replace(answer, warnings=answer.warnings + (failure,))
    console = Console(record=True, width=400)
    print_summary(console, answer, tmp_path)
    text = console.export_text()
    assert "_SHARED_SEQUENCES[uid][i]" in text and "Shards[bold]" in text


def test_the_headline_leads_with_tf_data_only_when_it_measured_faster():
    from reports.summary import headline
    from tuner.results import Confirmation

    base = builders.recommendation()  # its tf.data ran 0.3x the answer
    faster = dataclasses.replace(base, tf_data=Confirmation((400.0,) * 6, (300.0,) * 6, 1.33, 1.21, 1.42, 0.969))
    assert headline(base) == "Recommended: 8 threads, queue 16"
    assert headline(faster).startswith("Recommended: a tf.data pipeline over your batch code, 1.33x")
    assert headline(faster).endswith("; without tf.data: 8 threads, queue 16")


def test_a_dataset_whose_constructor_cannot_take_the_knobs_gets_code_that_runs_and_the_fix_first():
    from tuner.analysis import advice
    from tuner.search.space import SearchSpace

    stiff = builders.recommendation(takes_knob_arguments=False)
    code = engines.code_blocks(stiff)[0].code
    assert "ShardDataset(" not in code
    assert "dataset.workers = 8\ndataset.use_multiprocessing = False\ndataset.max_queue_size = 16" in code
    assert "ShardDataset(..., workers=8" in engines.code_blocks(builders.recommendation())[0].code
    warnings = advice.warn(label=KERAS_KNOBS.label, chosen=stiff.config, chosen_trial=None, trials=(), dataset=stiff.dataset,
                           memory_budget_bytes=None, not_tried=SearchSpace(8, True).not_tried)
    assert warnings[0].startswith("ShardDataset.__init__ takes neither the three knobs nor **kwargs")
    assert "super().__init__(**kwargs)" in warnings[0]


def test_the_race_plot_shows_every_contender_and_the_pareto_plot_needs_three_points():
    from reports.plots import draw_all

    data = plot_data(builders.recommendation())
    assert [label for label, _ in data.race] == ["8 threads, queue 16", "inline (no pool)"]
    assert data.race_answer == "8 threads, queue 16" and "6.60x the defaults" in data.race_claim
    assert set(draw_all(data)) == {"history", "race", "by_workers", "memory", "pareto", "predicted"}
    two_trials = dataclasses.replace(data, points=data.points[:2])
    assert "pareto" not in draw_all(two_trials)


def test_a_dataloader_report_gives_the_dataloader_line_and_each_fresh_workers_cost(tmp_path):
    cost = StartCost("forkserver", worker_seconds=0.30, fork_worker_seconds=0.05, keras_seconds=0.0,
                     pickle_seconds=0.01, pickle_bytes=3 * 2**20, import_seconds=0.4)
    answer = builders.recommendation(engine="torch-dataloader", best=LoaderConfig(2, True, 4, persistent_workers=True),
                                     start_cost=cost, user_knobs={"num_workers": 0, "prefetch_factor": None,
                                                                  "persistent_workers": False})
    html = write_reports(answer, tmp_path)["html"].read_text()
    assert ("DataLoader(dataset, batch_size=..., num_workers=2, prefetch_factor=2, persistent_workers=True, "
            "multiprocessing_context=&#39;fork&#39;)") in html
    assert ("<th>Your current settings</th><td>num_workers=0, prefetch_factor=None, persistent_workers=False</td>"
            in html and "max_queue_size=" not in html.split("<h2>")[1])
    row = html[html.index("Each fresh worker (forkserver)"):]
    assert row.index("0.66 s beyond a forked one: interpreter 0.25 s, pickling 0.01 s (3.0 MiB), your module 0.40 s") < 200
    assert "Keras 0.00" not in row[:300]


def test_the_trials_table_names_each_engine_s_knobs_as_its_code_takes_them():
    """A DataLoader's persistent pool and its fresh pool of the same size are two rows that differ."""
    fresh, persistent = LoaderConfig(2, True, 4), LoaderConfig(2, True, 4, persistent_workers=True)
    answer = dataclasses.replace(builders.recommendation(), engine=EngineName.TORCH_DATALOADER, config=persistent,
                                 trials=(builders.trial(1, fresh, 50.0), builders.trial(2, persistent, 60.0)))
    frame = trials_frame(answer)
    assert list(frame.columns[2:5]) == ["num_workers", "prefetch_factor", "persistent_workers"]
    assert list(frame["persistent_workers"]) == [False, True] and list(frame["prefetch_factor"]) == [2, 2]
    keras = trials_frame(builders.recommendation())
    assert list(keras.columns[2:5]) == ["workers", "use_multiprocessing", "max_queue_size"]
    html = render_html(answer)
    assert "<th>persistent_workers</th>" in html and "<th>max_queue_size</th>" not in html
