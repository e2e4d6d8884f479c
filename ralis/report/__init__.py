"""Results table (CSV) and the paper-style Markdown report with its figures."""

from ralis.report.markdown import write_report
from ralis.report.table import (
    collect,
    load_results,
    read_csv,
    rows_from_run,
    rows_from_theta0,
    write_csv,
)

__all__ = ["collect", "load_results", "read_csv", "rows_from_run", "rows_from_theta0",
           "write_csv", "write_report"]
