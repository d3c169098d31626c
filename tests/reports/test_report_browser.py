"""The report as a person sees it: rendered by headless Chromium on a desktop and a phone-width screen, every
plot loaded, the summary visible, no sideways scrolling."""

import re
import shutil
import subprocess

import pytest

from reports import write_reports
from tests import builders

HARNESS = """<!doctype html><html><head><title>pending</title></head><body>
<iframe id="wide" src="report.html" style="width:1280px;height:3000px;border:0"></iframe>
<iframe id="narrow" src="report.html" style="width:420px;height:3000px;border:0"></iframe>
<script>
function look(id) {
  const frame = document.getElementById(id), page = frame.contentDocument;
  const images = [...page.querySelectorAll("img")];
  const loaded = images.filter(img => img.complete && img.naturalWidth > 300 && img.naturalHeight > 200);
  const shown = images.filter(img => img.getBoundingClientRect().width <= frame.clientWidth);
  const summary = page.getElementById("summary");
  const visible = summary && summary.offsetHeight > 100 && summary.innerText.includes("Recommended");
  const fits = page.documentElement.scrollWidth <= frame.clientWidth;
  return `${id}: images=${images.length} loaded=${loaded.length} shown=${shown.length} summary=${visible} fits=${fits}`;
}
window.addEventListener("load", () => { document.title = look("wide") + "; " + look("narrow"); });
</script></body></html>"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is needed for the browser test: apt-get install -y chromium (the README's test command does)")
    return path


def test_report_renders_in_chromium_wide_and_narrow_with_every_plot_and_the_summary(tmp_path):
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
    # At a desktop's 1280 px and a phone's 420 px: every plot loads and fits, and nothing scrolls sideways.
    assert title.group(1) == ("wide: images=6 loaded=6 shown=6 summary=true fits=true; "
                              "narrow: images=6 loaded=6 shown=6 summary=true fits=true")
