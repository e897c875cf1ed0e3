"""The store's failure, in the one `KfpBotError` hierarchy, and the decorator that raises it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from kfp_bot_errors import KfpBotError

_P = ParamSpec("_P")
_T = TypeVar("_T")


class StoreError(KfpBotError):
    """The database could not be opened or did not answer; names the database (never its password)."""


def database_errors(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """Turn a database failure of a store method into a StoreError naming the operation and database.

    The store object must have a `url` attribute that is safe to show (password hidden).
    """

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except SQLAlchemyError as exc:
            raise store_error(method.__name__, getattr(args[0], "url", "the database"), exc) from exc

    return wrapper


def store_error(operation: str, where: str, exc: Exception) -> StoreError:
    """The StoreError for `operation` failing on the database `where` (shown without password)
    with `exc` (the driver's own error when SQLAlchemy wraps one)."""
    cause = getattr(exc, "orig", None) or exc
    return StoreError(f"store: {operation} failed on {where}: {cause}")
