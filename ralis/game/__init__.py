"""The labelling games a query agent learns from (:mod:`ralis.game.base`): ``net``, the paper's,
and ``head``, frozen features with a refit linear head. Importing the package registers both."""

from ralis.game import head, net  # noqa: F401  (registers the games)
from ralis.game.base import GAMES, SPLIT_ROLES, Game, Observation

__all__ = ["GAMES", "SPLIT_ROLES", "Game", "Observation"]
