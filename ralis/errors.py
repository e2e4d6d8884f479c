"""User-facing errors: the CLI prints them as one line and exits non-zero, without a traceback."""


class RalisError(Exception):
    """A mistake the user can fix (bad input, bad config). The message says what and how."""


class DataError(RalisError):
    """A dataset is missing, malformed or inconsistent."""


class ConfigError(RalisError):
    """A config value or a name (model, strategy, dataset, preset) is invalid."""
