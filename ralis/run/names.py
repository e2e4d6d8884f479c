"""The files of a run directory, by name: what every layer that reads or writes a run refers to.

``run.sqlite`` (:mod:`ralis.run.store`) is the record; the others are checkpoints, trained
models and views written beside it (:mod:`ralis.run.rundir` checks that they agree with it).
"""

from __future__ import annotations

STORE_NAME = "run.sqlite"
"""The run's record: identity, config, everything acquired and computed."""
MODEL_NAME = "model.safetensors"
"""A trained segmentation network: θ0 (``ralis pretrain``) or the upper bound's."""
TRAIN_CHECKPOINT = "train_checkpoint.safetensors"
"""The epoch checkpoint of a supervised training (θ0, the upper bound)."""
CHECKPOINT = "checkpoint.safetensors"
"""The step checkpoint of an active-learning run (``ralis simulate``)."""
START_MODEL = "start_model.safetensors"
"""The agent's start model: the segmentation network every game episode starts from."""
POLICY = "policy.safetensors"
"""The query agent's policy (``ralis train-agent``)."""
AGENT_CHECKPOINT = "agent_checkpoint.safetensors"
"""The episode checkpoint of agent training."""

RUN_FILES = (
    "config.json", "command.json", "inputs.json", CHECKPOINT, "results.json",
    "acquired_regions.csv", MODEL_NAME, "metrics.json", POLICY, AGENT_CHECKPOINT, "agent.json",
    START_MODEL, TRAIN_CHECKPOINT,
)
"""Files that belong to a run; any of them without ``run.sqlite`` means a lost record."""
LEGACY_FILES = ("model.pt", "checkpoint.pt", "policy.pt", "agent_checkpoint.pt",
                "start_model.pt")
"""Pickled files of ralis 0.1 runs."""
