"""Group commit: the calls that come in while one batch is on the wire go out together next.

A lone call goes out on the next turn of the event loop, so nothing ever waits for a batch to
fill; under load, the submissions a worker has in flight share one database statement or one
Redis round trip instead of paying for their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    """`submit(item)` resolves to `run([...items])`'s result at the item's position; if `run`
    raises, every item of that batch gets the error (its caller retries as it would alone)."""

    def __init__(self, run: Callable[[Sequence[In]], Awaitable[Sequence[Out]]]) -> None:
        self._run = run
        self._waiting: list[tuple[In, asyncio.Future[Out]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._send(batch)
        finally:
            self._flushing = None

    async def _send(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except BaseException:  # cancelled: so are its callers, none left hanging
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # its caller may have been cancelled meanwhile
                future.set_result(result)
