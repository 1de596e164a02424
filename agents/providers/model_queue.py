"""Sharing the local model: one generation at a time per process, served fairly by lane.

A llama.cpp context runs one generation at a time, and on a small machine two at once would only
halve each other's speed. So every local generation in the process takes a turn from one queue.
Turns go round-robin between *lanes* (a lane is whoever the caller says: the conversations app
uses one lane per user), first come first served within a lane, so one user who starts ten runs
waits behind their own runs, not in front of everybody else's.

Callers say who they are with ``model_wait_scope(lane, on_wait)``; ``on_wait(position)`` is
awaited whenever the caller's place in the queue changes (position 1 = next), so the chat can say
"waiting for the local model (position N)", and with 0 once its turn comes after a wait. A waiter
whose task is cancelled, or whose AutoGen ``CancellationToken`` is cancelled, leaves the queue at
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autogen_core import CancellationToken

WaitListener = Callable[[int], Awaitable[None]]

# The lane callers that do not say who they are share.
DEFAULT_LANE = "anonymous"


@dataclass(frozen=True)
class ModelLane:
    key: str
    on_wait: WaitListener | None = None


_LANE: contextvars.ContextVar[ModelLane | None] = contextvars.ContextVar("lodestone_model_lane", default=None)


@contextmanager
def model_wait_scope(lane: str, on_wait: WaitListener | None = None) -> Iterator[None]:
    """Local generations started inside queue in ``lane`` and report their place to ``on_wait``."""
    reset = _LANE.set(ModelLane(lane, on_wait))
    try:
        yield
    finally:
        _LANE.reset(reset)


def current_lane() -> ModelLane:
    return _LANE.get() or ModelLane(DEFAULT_LANE)


@dataclass(eq=False)
class Ticket:
    lane: str
    loop: asyncio.AbstractEventLoop
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        with contextlib.suppress(RuntimeError):  # the waiter's loop is closed: nobody listens any more
            self.loop.call_soon_threadsafe(self.changed.set)


class FairQueue:
    """Round-robin between lanes, FIFO within a lane; thread-safe (turns end in worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lanes: OrderedDict[str, deque[Ticket]] = OrderedDict()  # in serving order
        self._holder: Ticket | None = None
        self.served = 0

    def _order(self) -> list[Ticket]:
        """Waiting tickets in the order they will be served: one per lane per round."""
        queues = [list(q) for q in self._lanes.values()]
        order: list[Ticket] = []
        depth = 0
        while any(depth < len(q) for q in queues):
            order.extend(q[depth] for q in queues if depth < len(q))
            depth += 1
        return order

    def position(self, ticket: Ticket) -> int:
        """0 while it holds the turn, N when N-1 others are served first, -1 when not queued."""
        with self._lock:
            if self._holder is ticket:
                return 0
            order = self._order()
            return order.index(ticket) + 1 if ticket in order else -1

    def waiting(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._lanes.values())

    def _enqueue(self, ticket: Ticket) -> None:
        with self._lock:
            self._lanes.setdefault(ticket.lane, deque()).append(ticket)
            self._advance()

    def _advance(self) -> None:
        """With the lock held: give a free turn to the first lane in order, which then goes last."""
        if self._holder is None and self._lanes:
            lane, tickets = next(iter(self._lanes.items()))
            self._holder = tickets.popleft()
            del self._lanes[lane]
            if tickets:
                self._lanes[lane] = tickets  # the lane's next run goes behind every other lane
            self.served += 1
        for queued in [self._holder, *self._order()]:
            if queued is not None:
                queued.notify()

    def _withdraw(self, ticket: Ticket) -> None:
        with self._lock:
            if self._holder is ticket:
                self._holder = None
            else:
                tickets = self._lanes.get(ticket.lane)
                if tickets is not None and ticket in tickets:
                    tickets.remove(ticket)
                    if not tickets:
                        del self._lanes[ticket.lane]
            self._advance()

    async def acquire(self, *, cancellation_token: CancellationToken | None = None) -> Ticket:
        """Wait for the turn; the returned ticket must be given back with ``release``."""
        lane = current_lane()
        ticket = Ticket(lane.key, asyncio.get_running_loop())
        if cancellation_token is not None:
            cancellation_token.add_callback(ticket.notify)
        self._enqueue(ticket)
        reported = 0
        try:
            while True:
                ticket.changed.clear()
                if cancellation_token is not None and cancellation_token.is_cancelled():
                    raise asyncio.CancelledError()
                place = self.position(ticket)
                if place == 0:
                    if reported and lane.on_wait is not None:
                        await lane.on_wait(0)  # no longer waiting
                    return ticket
                if place != reported and lane.on_wait is not None:
                    reported = place
                    await lane.on_wait(place)
                await ticket.changed.wait()
        except BaseException:
            self._withdraw(ticket)
            raise

    def release(self, ticket: Ticket) -> None:
        """End the turn (from any thread) and hand it to the next lane."""
        self._withdraw(ticket)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "busy": self._holder is not None,
                "waiting": sum(len(q) for q in self._lanes.values()),
                "lanes_waiting": len(self._lanes),
                "served": self.served,
            }


# One queue per process: every local model shares the same two cores.
LOCAL_MODEL_QUEUE = FairQueue()


# The prompt caches of the models this process loaded (local.py registers them), for reports.
_CACHE_REPORTS: dict[str, Callable[[], dict[str, Any]]] = {}


def report_cache(model_path: str, snapshot: Callable[[], dict[str, Any]]) -> None:
    _CACHE_REPORTS[model_path] = snapshot


def local_model_stats() -> dict[str, Any]:
    """For the monitoring page and the benchmarks, in this process: the queue, and each loaded
    model's prompt cache (hit rate = prompt tokens not processed again)."""
    return {
        "queue": LOCAL_MODEL_QUEUE.snapshot(),
        "models": [{"model": Path(path).name, **snapshot()} for path, snapshot in _CACHE_REPORTS.items()],
    }
