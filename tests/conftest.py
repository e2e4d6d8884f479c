import pytest
import torch

# Tiny test tensors gain nothing from intra-op threads, and OpenMP threads slow to a crawl when
# the machine is busy; one thread keeps the suite fast and its timings stable.
torch.set_num_threads(1)


class Payload:
    """Unpickling this calls ``Path.touch(marker)``: the proof that a loader ran code."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (self.marker,))


def write_pickle_payload(path, marker, base=None):
    """A ``torch.save`` file that would create ``marker`` if anything unpickled it."""
    torch.save({**(base or {}), "extra": Payload(marker)}, path)
    assert not marker.exists()
    return path


@pytest.fixture
def pickle_payload():
    return write_pickle_payload
