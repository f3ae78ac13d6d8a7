"""quick_init builds the same frozen instances as the dataclass's own __init__."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from airuntime.frozen import quick_init
from airuntime.observability.events import AttemptRecord, CallRecord
from airuntime.prompts.rendered import RenderedPrompt
from airuntime.resilience.budget import Reservation
from airuntime.resilience.chain import ChainResult
from airuntime.structured import Generated

QUICK = [AttemptRecord, CallRecord, Generated, ChainResult, Reservation, RenderedPrompt]


def twin(cls: type[Any]) -> type[Any]:
    """The same dataclass with the generated __init__."""
    fields = [
        (field.name, field.type, dataclasses.field(default=field.default))
        if field.default is not dataclasses.MISSING
        else (field.name, field.type)
        for field in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True, slots=True)


@pytest.mark.parametrize("cls", QUICK, ids=lambda cls: cls.__name__)
def test_the_signature_is_the_generated_one(cls: type[Any]) -> None:
    ours = inspect.signature(cls).parameters
    generated = inspect.signature(twin(cls)).parameters

    assert [(p.name, p.default, p.kind) for p in ours.values()] == [
        (p.name, p.default, p.kind) for p in generated.values()
    ]


@pytest.mark.parametrize("cls", QUICK, ids=lambda cls: cls.__name__)
def test_instances_hold_what_was_given_and_stay_frozen(cls: type[Any]) -> None:
    fields = dataclasses.fields(cls)
    values = {field.name: object() for field in fields}

    made = cls(**values)
    positional = cls(*values.values())

    assert all(getattr(made, name) is value for name, value in values.items())
    assert all(getattr(positional, name) is value for name, value in values.items())
    assert made == positional
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.__setattr__(fields[0].name, None)
    with pytest.raises(TypeError):
        cls(**values, unexpected=1)
    with pytest.raises(TypeError):
        cls()


def test_defaults_apply() -> None:
    reservation = Reservation.__new__(Reservation)
    Reservation.__init__(reservation, amount=1, call=None)  # type: ignore[arg-type]

    assert reservation.day is None


def test_only_plain_frozen_slotted_dataclasses_are_taken() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        x: list[int] = dataclasses.field(default_factory=list)

    for cls in (NoSlots, NotFrozen, Factory):
        with pytest.raises(TypeError):
            quick_init(cls)
