"""Frozen dataclasses that are quick to build.

A frozen dataclass's generated `__init__` sets every field through `object.__setattr__` (the
class's own refuses), which made a record of a dozen fields cost about twice a plain one; the
records of a model call are built on every call. `quick_init` gives a frozen, slotted dataclass
an `__init__` that stores each field through its slot's descriptor instead: the same
parameters, defaults and resulting instance, and the instance stays frozen.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Replace the generated `__init__` of a frozen dataclass with slots (apply it above
    `@dataclass(frozen=True, slots=True)`). Fields must be plain: no default factory, no
    keyword-only or init=False field, and the class no `__post_init__`."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__: keep the generated __init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    namespace: dict[str, Any] = {}
    arguments: list[str] = []
    lines: list[str] = []
    for field in fields:
        if field.default_factory is not dataclasses.MISSING or field.kw_only or not field.init:
            raise TypeError(f"{cls.__name__}.{field.name}: quick_init takes plain fields only")
        namespace[f"_set_{field.name}"] = getattr(cls, field.name).__set__
        if field.default is dataclasses.MISSING:
            arguments.append(field.name)
        else:
            namespace[f"_default_{field.name}"] = field.default
            arguments.append(f"{field.name}=_default_{field.name}")
        lines.append(f"    _set_{field.name}(self, {field.name})\n")
    body = "".join(lines) or "    pass\n"
    source = f"def __init__(self, {', '.join(arguments)}):\n" + body
    exec(source, namespace)  # noqa: S102 - built from the field names, as dataclasses does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = {field.name: field.type for field in fields} | {"return": None}
    init.__doc__ = getattr(cls.__init__, "__doc__", None)
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
