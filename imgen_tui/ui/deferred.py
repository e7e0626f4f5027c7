"""Worker bodies whose coroutine is made only when the worker starts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any


class deferred(Awaitable[None]):
    """`run_worker(deferred(self._load, path), exclusive=True)`.

    An exclusive worker replaced before it started never runs; given a
    coroutine object, Python then warns that it was never awaited (an error
    in the tests). This awaitable makes the coroutine only when awaited.
    """

    def __init__(self, work: Callable[..., Awaitable[None]], *args: object) -> None:
        self._work, self._args = work, args

    def __await__(self) -> Generator[Any, None, None]:
        return self._work(*self._args).__await__()
