"""This sample model as an ordinary model folder: the network and data its ``model.json`` names.

Every model folder has this shape (README, "Your own model"): ``build()`` returns the
network, ``data()`` the training data (here with its validation split) and ``loss`` the
per-sample losses.  The checkpoints in ``checkpoints/`` are its weights.  The card names
built-in kinds, so :class:`lltools.targets.models.CardModel` provides the three functions.
"""

from pathlib import Path

from lltools.targets.models import CardModel

build, data, loss = CardModel(Path(__file__).resolve().parent).functions
