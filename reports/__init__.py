"""From a Recommendation (or its results.json) to report.html, results.json and trials.csv."""

from reports.write import render_html, trials_frame, write_reports

__all__ = ["render_html", "trials_frame", "write_reports"]
