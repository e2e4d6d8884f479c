"""Results table (CSV) and the paper-style Markdown report with its figures."""

from ralis.report.markdown import write_report
from ralis.report.table import collect, read_csv, rows_from_run, write_csv

__all__ = ["collect", "read_csv", "rows_from_run", "write_csv", "write_report"]
