"""Typed, frozen run configuration, named presets, JSON round trip and ``--set`` overrides.

* :mod:`~ralis.config.schema` -- the dataclasses (every field has a one-line comment);
* :mod:`~ralis.config.presets` -- named presets, functions of nothing: ``get_preset("camvid-cpu")``;
* :mod:`~ralis.config.checks` -- :func:`validate`;
* :mod:`~ralis.config.io` -- ``config.json`` (saved beside every run), ``--set`` overrides and
  the comparison of two configs.

Everything is importable from ``ralis.config`` itself.
"""

from ralis.config.checks import validate
from ralis.config.io import (
    MACHINE_FIELDS,
    apply_overrides,
    config_diff,
    describe_diff,
    from_dict,
    load_config,
    override,
    save_config,
)
from ralis.config.presets import PRESETS, get_preset
from ralis.config.schema import (
    AGENT_MODES,
    AgentConfig,
    ALConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    flatten_config,
    to_dict,
)

__all__ = [
    "AGENT_MODES", "ALConfig", "AgentConfig", "DataConfig", "MACHINE_FIELDS", "ModelConfig",
    "PRESETS", "RunConfig", "TrainConfig", "apply_overrides", "config_diff", "describe_diff",
    "flatten_config", "from_dict", "get_preset", "load_config", "override", "save_config",
    "to_dict", "validate",
]
