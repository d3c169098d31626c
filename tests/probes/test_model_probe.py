"""The model probe's allocator symptoms, and the warning they trigger."""

import dataclasses
import mmap

import pytest

from probes import probe_model
from reports import write_reports
from tests import builders
from tuner.analysis import advice

PAGE = mmap.PAGESIZE
FRESH_BYTES = 8 << 20


class FreshMemoryModel:
    """A stand-in for a compiled model whose step maps, touches and unmaps fresh memory, as a model step does
    under TensorFlow's malloc setting."""

    def train_on_batch(self, x, y, sample_weight=None):
        block = mmap.mmap(-1, FRESH_BYTES)
        for offset in range(0, FRESH_BYTES, PAGE):
            block[offset] = 1  # the first write to each page faults it in
        block.close()

    def count_params(self):
        return 0


class ReusingModel(FreshMemoryModel):
    def __init__(self):
        self.block = bytearray(FRESH_BYTES)

    def train_on_batch(self, x, y, sample_weight=None):
        for offset in range(0, FRESH_BYTES, PAGE):
            self.block[offset] = 1


def probe(model):
    return probe_model(model, ([0], [0]), description="fake", is_default_model=False)


def test_the_model_probe_counts_the_page_faults_of_each_step():
    pytest.importorskip("resource")  # POSIX only; the fields are None elsewhere
    fresh, reused = probe(FreshMemoryModel()), probe(ReusingModel())
    assert fresh.page_faults_per_step >= 0.9 * FRESH_BYTES / PAGE
    assert reused.page_faults_per_step < 0.1 * FRESH_BYTES / PAGE
    assert 0.0 < fresh.kernel_cpu_share <= 1.0


def test_allocator_churn_warns_only_when_the_kernel_share_and_the_faults_are_both_high():
    model = builders.model()
    churning = dataclasses.replace(model, kernel_cpu_share=0.4, page_faults_per_step=12000.0)
    warning = advice.allocator_churn(churning)
    assert "40% of its CPU time in the kernel" in warning and "12,000 page faults per step" in warning
    assert "n=" not in warning and f"({model.step_seconds.count} steps" in warning
    assert advice.allocator_churn(dataclasses.replace(churning, kernel_cpu_share=0.08)) is None
    assert advice.allocator_churn(dataclasses.replace(churning, page_faults_per_step=900.0)) is None
    assert advice.allocator_churn(model) is None  # not measured (an old results.json, or Windows)


def test_the_report_shows_the_kernel_share_and_page_faults_of_the_step(tmp_path):
    recommendation = builders.recommendation()
    model = dataclasses.replace(recommendation.model, kernel_cpu_share=0.31, page_faults_per_step=11532.4)
    html = write_reports(dataclasses.replace(recommendation, model=model), tmp_path)["html"].read_text()
    assert "31% of it in the kernel, 11,532 page faults per step" in html
