"""The report as a person sees it: rendered by headless Chromium, every plot loaded, the summary visible."""

import re
import shutil
import subprocess

import pytest

from reports import write_reports
from tests import builders

HARNESS = """<!doctype html><html><head><title>pending</title></head><body>
<iframe id="report" src="report.html" style="width:1100px;height:3000px"></iframe>
<script>
window.addEventListener("load", () => {
  const page = document.getElementById("report").contentDocument;
  const images = [...page.querySelectorAll("img")];
  const loaded = images.filter(img => img.complete && img.naturalWidth > 300 && img.naturalHeight > 200);
  const summary = page.getElementById("summary");
  const visible = summary && summary.offsetHeight > 100 && summary.innerText.includes("Recommended");
  document.title = `images=${images.length} loaded=${loaded.length} summary=${visible}`;
});
</script></body></html>"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is needed for the browser test: apt-get install -y chromium (the README's test command does)")
    return path


def test_report_renders_in_chromium_with_every_plot_and_the_summary(tmp_path):
    write_reports(builders.recommendation(), tmp_path)
    (tmp_path / "harness.html").write_text(HARNESS)
    result = subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
            "--virtual-time-budget=10000", "--dump-dom", (tmp_path / "harness.html").as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )
    title = re.search(r"<title>(.*?)</title>", result.stdout)
    assert title, result.stderr[-2000:]
    assert title.group(1) == "images=5 loaded=5 summary=true"
