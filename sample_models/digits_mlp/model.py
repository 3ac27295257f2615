"""This sample model as an ordinary model folder: the network and data its ``model.json`` names.

Every model folder has this shape (README, "Your own model"): ``build()`` returns the
network, ``data()`` the training data (here with its validation split) and ``loss`` the
per-sample losses.  The checkpoints in ``checkpoints/`` are its weights.
"""

from pathlib import Path

import torch

from lltools.targets.models import build_dataset, build_module, card_loss, read_card

HERE = Path(__file__).resolve().parent
CARD = read_card(HERE)
PER_SAMPLE = card_loss(CARD["loss"])


def build() -> torch.nn.Module:
    """The architecture of the card (fresh initialisation; the checkpoints hold the weights)."""
    return build_module(CARD["architecture"])


def data() -> dict:
    """Training and validation data, regenerated from the card (float64; cast on loading)."""
    d = build_dataset(CARD["data"], torch.float64)
    return {"train": (d.inputs, d.targets), "val": (d.val_inputs, d.val_targets)}


def loss(outputs: torch.Tensor, batch: tuple) -> torch.Tensor:
    """The card's per-sample loss of the outputs against the targets ``batch[1]``, shape (m,)."""
    return PER_SAMPLE(outputs, batch[1])
