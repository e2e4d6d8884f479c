"""User-facing errors: the CLI prints them as one line and exits non-zero, without a traceback."""


class RalisError(Exception):
    """A mistake the user can fix (bad input, bad config). The message says what and how."""


class DataError(RalisError):
    """A dataset is missing, malformed or inconsistent."""


class ConfigError(RalisError):
    """A config value or a name (model, strategy, dataset, preset) is invalid."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for
    one-line errors that wrap a library's multi-line message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
