"""One tiny registry type, used once per family (models, strategies, datasets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from ralis.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; an unknown name fails with the list of valid names."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.family} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items))
            raise ConfigError(f"unknown {self.family} {name!r}; valid names: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
