"""The ``model.json`` schema: a model card is untrusted input, checked before anything is built.

A card from a model folder (or an upload) is parsed with a size and nesting limit
(:func:`lltools.base.untrusted.read_json`) and validated against :class:`ModelCard` (pydantic):
wrong types, unknown kinds and absurd sizes are refused with one line naming the field, e.g.
``model.json: architecture.widths.0: Input should be less than or equal to 100000``.  The
sizes it declares (parameters, training and validation data) are checked *before* any network
or data set is built: :data:`MAX_PARAMETERS`, :data:`MAX_DATA_VALUES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lltools.base.untrusted import UntrustedInputError, one_line, read_json

#: Largest ``model.json`` read (bytes).
MAX_CARD_BYTES = 1_000_000
#: Largest layer width, number of layers and parameter count a card may declare.
MAX_WIDTH = 100_000
MAX_LAYERS = 1_000
MAX_PARAMETERS = 50_000_000
#: Largest number of values (inputs + targets, training + validation) a card's data may hold.
MAX_DATA_VALUES = 200_000_000
#: Largest modulus of modular-addition data.
MAX_MODULUS = 500

PosInt = Annotated[int, Field(ge=1)]
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class CardError(UntrustedInputError):
    """A ``model.json`` that cannot be used (one line naming the field)."""


class _Block(BaseModel):
    model_config = ConfigDict(extra="allow", strict=False)


class LinearArchitecture(_Block):
    kind: Literal["deep_linear", "mlp"]
    widths: list[Width] = Field(min_length=2, max_length=MAX_LAYERS + 1)
    activation: Literal["relu", "tanh"] = "relu"
    bias: bool | None = None

    def num_parameters(self) -> int:
        bias = self.bias if self.bias is not None else self.kind == "mlp"
        return sum(a * b + (b if bias else 0) for a, b in zip(self.widths, self.widths[1:], strict=False))


class QuadraticArchitecture(_Block):
    kind: Literal["quadratic"]
    d: Width
    width: Width
    p: Annotated[int, Field(ge=2, le=MAX_MODULUS)]

    def num_parameters(self) -> int:
        return self.d * self.width + self.width * self.p


class TeacherData(_Block):
    kind: Literal["deep_linear_teacher"]
    widths: list[Width] = Field(min_length=2, max_length=MAX_LAYERS + 1)
    rank: Annotated[int, Field(ge=0)]
    n: PosInt
    seed: int
    bias: bool = False
    noise_std: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    val_n: Annotated[int, Field(ge=0)] = 1000

    def num_values(self) -> int:
        return (self.n + self.val_n) * (self.widths[0] + self.widths[-1])


class DigitsData(_Block):
    kind: Literal["digits"]
    seed: int = 0
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2

    def num_values(self) -> int:
        return 1797 * 65


class ModularData(_Block):
    kind: Literal["modular_addition"]
    p: Annotated[int, Field(ge=2, le=MAX_MODULUS)]
    train_fraction: Annotated[float, Field(gt=0, lt=1)]
    seed: int

    def num_values(self) -> int:
        return self.p**2 * 3 * self.p


class Theory(_Block):
    llc: Annotated[float, Field(allow_inf_nan=False)] | None = None
    multiplicity: int | None = None
    source: str | None = None


class SamplerDefaults(_Block):
    epsilon: PosFloat | None = None
    gamma: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    nbeta: PosFloat | None = None
    chains: PosInt | None = None
    draws: PosInt | None = None
    burnin: Annotated[int, Field(ge=0)] | None = None
    thinning: PosInt | None = None
    batch_size: PosInt | None = None


#: Card fields a folder WITHOUT ``model.py`` must have (the built-in architecture, data,
#: loss and centre); with ``model.py`` (:mod:`lltools.targets.folders`) they are optional.
BUILTIN_FIELDS: tuple[str, ...] = ("architecture", "data", "loss", "final_checkpoint")


class ModelCard(_Block):
    """What ``model.json`` may hold (unknown extra keys are kept).

    Only ``name`` is required by the schema; a card of a folder without ``model.py`` must
    also give :data:`BUILTIN_FIELDS` (checked by :func:`validate_card`).
    """

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    architecture: LinearArchitecture | QuadraticArchitecture | None = Field(None, discriminator="kind")
    data: TeacherData | DigitsData | ModularData | None = Field(None, discriminator="kind")
    loss: Literal["mse", "cross_entropy", "centred_mse"] | None = None
    final_checkpoint: str | None = Field(None, min_length=1, max_length=4096)
    n: Annotated[int, Field(ge=0)] | None = None
    num_parameters: Annotated[int, Field(ge=0)] | None = None
    theory: Theory | None = None
    default_sampler: SamplerDefaults | None = None
    first_run: SamplerDefaults | None = None

    @model_validator(mode="after")
    def _sizes(self) -> ModelCard:
        params = self.architecture.num_parameters() if self.architecture is not None else 0
        if params > MAX_PARAMETERS:
            raise ValueError(f"architecture declares {params:,} parameters; the limit is {MAX_PARAMETERS:,}")
        values = self.data.num_values() if self.data is not None else 0
        if values > MAX_DATA_VALUES:
            raise ValueError(f"data declares {values:,} values; the limit is {MAX_DATA_VALUES:,}")
        return self


def _describe(exc: ValidationError) -> str:
    """The first validation error as ``field.path: message`` (no input echoed)."""
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = [str(p) for p in err["loc"]]
    # drop the discriminator tags pydantic inserts (architecture.mlp.widths -> architecture.widths)
    loc = [p for i, p in enumerate(loc) if not (i > 0 and loc[i - 1] in ("architecture", "data")
                                                 and p in ("deep_linear", "mlp", "quadratic",
                                                           "deep_linear_teacher", "digits",
                                                           "modular_addition"))]
    where = ".".join(loc)
    msg = err["msg"].removeprefix("Value error, ")
    return one_line(f"{where}: {msg}" if where else msg, 240)


def validate_card(data: Any, *, where: str = "model.json", builtin: bool = True) -> dict[str, Any]:
    """``data`` checked against :class:`ModelCard`; returns it as a plain dict (extras kept).

    ``builtin``: the card describes the model by itself (no ``model.py``), so
    :data:`BUILTIN_FIELDS` are required.

    Raises
    ------
    CardError
        One line naming the field: ``model.json: loss: Input should be 'mse', ...``.
    """
    if not isinstance(data, dict):
        raise CardError(f"{where}: expected a JSON object, got {type(data).__name__}")
    try:
        card = ModelCard.model_validate(data)
    except ValidationError as exc:
        raise CardError(f"{where}: {_describe(exc)}") from None
    if builtin:
        for key in BUILTIN_FIELDS:
            if getattr(card, key) is None:
                raise CardError(f"{where}: {key}: Field required "
                                "(or add a model.py defining build() and data())")
    out = dict(data)
    for key in ("architecture", "data", "default_sampler", "theory"):
        block = getattr(card, key)
        out[key] = block.model_dump(exclude_unset=True) if block is not None else {}
    if card.first_run is not None:
        out["first_run"] = card.first_run.model_dump(exclude_unset=True)
    return out


def first_run_settings(card: Mapping[str, Any]) -> dict[str, Any]:
    """The sampler settings of a model's first run: the card's ``first_run`` over its
    ``default_sampler`` (keys ``first_run`` leaves out, or sets to null, come from
    ``default_sampler``; without ``first_run`` it is ``default_sampler`` itself).

    ``default_sampler`` is the model's reference setting (its shipped trajectory is computed
    with it, and the Trajectories page recomputes with it); ``first_run`` is what the Networks
    page and ``lltools estimate --model`` start from: a short run chosen to be healthy within
    a few seconds of CPU.  Where its γ differs, λ̂ measures a more (or less) local quantity
    than the trajectory's — see :func:`first_run_gamma_note`.
    """
    base = {k: v for k, v in dict(card.get("default_sampler") or {}).items() if v is not None}
    base.update({k: v for k, v in dict(card.get("first_run") or {}).items() if v is not None})
    return base


def first_run_gamma_note(card: Mapping[str, Any], gamma: float | None) -> str | None:
    """One plain sentence when a run's γ differs from the card's reference ``default_sampler``
    γ (the trajectory's), else ``None``: λ̂ depends on γ, so the two are different quantities."""
    ref = (card.get("default_sampler") or {}).get("gamma")
    if ref is None or gamma is None or math.isclose(float(gamma), float(ref), rel_tol=1e-9):
        return None
    first = first_run_settings(card).get("gamma")
    which = ("this model's first-run setting" if first is not None
             and math.isclose(float(gamma), float(first), rel_tol=1e-9) else "this run's setting")
    side = "more local (chains held closer to w*)" if gamma > ref else "less local"
    return (f"γ = {gamma:g} ({which}) is {side} than the γ = {float(ref):g} of this model's reference "
            f"setting and LLC trajectory: λ̂ depends on γ, so this λ̂ is not the same quantity as the "
            f"trajectory's λ̂ and should not be compared with it (larger γ gives a smaller λ̂).")


def read_card_file(path: Path, *, builtin: bool = True) -> dict[str, Any]:
    """Parse and validate the ``model.json`` at ``path`` (size, nesting, schema; ``builtin``
    as for :func:`validate_card`)."""
    try:
        data = read_json(path, what=str(path), max_bytes=MAX_CARD_BYTES)
    except UntrustedInputError as exc:
        raise CardError(str(exc)) from None
    return validate_card(data, where=str(path), builtin=builtin)

