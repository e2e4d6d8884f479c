"""Results table (CSV) and the paper-style Markdown report with its figures.

The table: :mod:`~ralis.report.runs` (rows from run directories), :mod:`~ralis.report.table`
(CSV on pandas), :mod:`~ralis.report.series` (strategies, region kinds), :mod:`~ralis.report.numbers`
and :mod:`~ralis.report.stats` (aggregates, paired bootstrap intervals). The report:
:mod:`~ralis.report.markdown` (:func:`write_report`) and one module per section; the figures:
:mod:`~ralis.report.figures`, :mod:`~ralis.report.regions_figure` (their look:
:mod:`~ralis.report.plots`); the agents' runs: :mod:`~ralis.report.agents`,
:mod:`~ralis.report.heldout`.
"""

from ralis.report.markdown import write_report
from ralis.report.runs import collect, load_results, rows_from_run, rows_from_theta0
from ralis.report.table import read_csv, write_csv

__all__ = ["collect", "load_results", "read_csv", "rows_from_run", "rows_from_theta0",
           "write_csv", "write_report"]
