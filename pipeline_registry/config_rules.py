"""Validation rules of the configuration dataclasses, read by pydantic only when it validates.

The `.kfp-bot.yaml` models are frozen standard-library dataclasses, so that a plan whose
configuration is already validated (cached by blob id, `repo_config.load_repo_config`) or absent
never imports pydantic: it costs more than the whole start-up of `kfp-bot plan` (#14). Pydantic
validates such dataclasses (`pydantic.TypeAdapter`) and honours `Annotated` metadata that carries
a `__get_pydantic_core_schema__` method (https://docs.pydantic.dev/latest/concepts/types/, "Custom
types"). The rules below are that metadata: plain objects at import, pydantic-core schemas when a
file is validated, with pydantic's own messages (`Input should be greater than or equal to 5`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any

# Every configuration dataclass: unknown keys are an error (then named, with a suggestion).
STRICT = {"extra": "forbid"}


class Limits:
    """Bounds of a number (`ge`, `le`, `gt`, `lt`), as `pydantic.Field(ge=...)` sets them."""

    def __init__(self, **bounds: float) -> None:
        self.bounds = bounds

    def __get_pydantic_core_schema__(self, source: Any, handler: Callable[[Any], Any]) -> Any:
        """The number's schema with the bounds added (pydantic checks and words them)."""
        schema = handler(source)
        schema.update(self.bounds)
        return schema


class After:
    """A check run on the value once its type is validated (`pydantic.AfterValidator`): it
    returns the cleaned value or raises ValueError with the message the user sees."""

    def __init__(self, check: Callable[[Any], Any]) -> None:
        self.check = check

    def __get_pydantic_core_schema__(self, source: Any, handler: Callable[[Any], Any]) -> Any:
        """The value's schema followed by the check."""
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self.check, handler(source))


class Before:
    """A rewrite of the raw value before its type is validated (`pydantic.BeforeValidator`), for a
    short form such as `autorun: true`. Put where the type is used: pydantic shares one schema per
    dataclass across the uses, which would bypass a rewrite attached to the class."""

    def __init__(self, rewrite: Callable[[Any], Any]) -> None:
        self.rewrite = rewrite

    def __get_pydantic_core_schema__(self, source: Any, handler: Callable[[Any], Any]) -> Any:
        """The rewrite followed by the value's schema."""
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(self.rewrite, handler(source))


def plain(value: Any) -> Any:
    """A configuration value as JSON data: dataclasses as mappings of what they compare (never the
    key lines), enums as their values, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return value
