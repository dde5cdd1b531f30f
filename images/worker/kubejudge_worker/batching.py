"""Group commit: the calls that come in while one batch is on the wire go out together next.

A lone call goes out on the next turn of the event loop, so nothing ever waits for a batch to
fill; under load, the submissions a worker has in flight share one database statement or one
Redis round trip instead of paying for their own. A call that may wait (`within_s`) rides with
the next batch that goes anyway, and starts one itself only when its time is up.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    """`put(item)` is a future of `run([...items])`'s result at the item's position: an
    exception there is raised to that item's caller alone; if `run` raises, every item of the
    batch gets the error (each caller retries as it would alone). Items go out in the order
    they were put, and a batch starts only when the one before it is back."""

    def __init__(
        self, run: Callable[[Sequence[In]], Awaitable[Sequence[Out | BaseException]]]
    ) -> None:
        self._run = run
        self._waiting: list[tuple[In, asyncio.Future[Out]]] = []
        self._due = math.inf  # the loop time by which what waits must go
        self._flushing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def put(self, item: In, *, within_s: float = 0.0) -> asyncio.Future[Out]:
        """Queue `item` to go within `within_s` (0: on the next turn of the loop)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        self._waiting.append((item, future))
        self._due = min(self._due, loop.time() + within_s)
        self._schedule()
        return future

    async def submit(self, item: In, *, within_s: float = 0.0) -> Out:
        return await self.put(item, within_s=within_s)

    def _schedule(self) -> None:
        """Start a batch if one is due, else wake up when it is; a batch on the wire looks
        again when it is back."""
        if self._flushing is not None or not self._waiting:
            return
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._due <= loop.time():
            self._flushing = loop.create_task(self._flush())
        else:
            self._timer = loop.call_at(self._due, self._schedule)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting and self._due <= loop.time():
                batch, self._waiting, self._due = self._waiting, [], math.inf
                await self._send(batch)
        finally:
            self._flushing = None
        self._schedule()  # what may still wait: its timer

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
            if future.done():  # its caller may have been cancelled meanwhile
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
