"""The local model's fair queue: one turn at a time, round-robin between lanes, places reported,
waiters cancellable."""

from __future__ import annotations

import asyncio
import threading

import pytest
from autogen_core import CancellationToken

from agents.providers.model_queue import FairQueue, Ticket, model_wait_scope


async def _take(queue: FairQueue, lane: str, served: list[str], label: str, places: list[int] | None = None) -> Ticket:
    async def on_wait(place: int) -> None:
        if places is not None:
            places.append(place)

    with model_wait_scope(lane, on_wait):
        ticket = await queue.acquire()
    served.append(label)
    return ticket


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_one_turn_at_a_time_and_the_next_waiter_gets_it_on_release() -> None:
    queue = FairQueue()
    served: list[str] = []
    first = await _take(queue, "a", served, "a1")
    second = asyncio.create_task(_take(queue, "b", served, "b1"))
    await _settle()
    assert served == ["a1"] and queue.waiting() == 1
    queue.release(first)
    ticket = await asyncio.wait_for(second, 1)
    assert served == ["a1", "b1"] and queue.position(ticket) == 0
    queue.release(ticket)
    assert queue.snapshot() == {"busy": False, "waiting": 0, "lanes_waiting": 0, "served": 2}


async def test_a_user_with_many_runs_does_not_starve_another_user() -> None:
    queue = FairQueue()
    served: list[str] = []
    holder = await _take(queue, "alice", served, "alice-0")
    tasks = [asyncio.create_task(_take(queue, "alice", served, f"alice-{i}")) for i in range(1, 4)]
    await _settle()
    bob_places: list[int] = []
    tasks.append(asyncio.create_task(_take(queue, "bob", served, "bob-1", bob_places)))
    await _settle()
    # Bob came last but is served right after Alice's first waiting run, not after all three.
    assert bob_places == [2]
    ticket = holder
    for _ in range(4):
        queue.release(ticket)
        await _settle()
        ticket = next(t.result() for t in tasks if t.done() and queue.position(t.result()) == 0)
    queue.release(ticket)
    assert served == ["alice-0", "alice-1", "bob-1", "alice-2", "alice-3"]
    assert bob_places == [2, 1, 0]  # told each place, then that the wait is over


async def test_a_waiter_cancelled_by_its_token_leaves_the_queue_and_the_rest_move_up() -> None:
    queue = FairQueue()
    served: list[str] = []
    holder = await _take(queue, "a", served, "a1")
    token = CancellationToken()
    with model_wait_scope("b"):
        cancelled = asyncio.create_task(queue.acquire(cancellation_token=token))
    places: list[int] = []
    later = asyncio.create_task(_take(queue, "c", served, "c1", places))
    await _settle()
    assert queue.waiting() == 2 and places == [2]
    token.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(cancelled, 1)
    await _settle()
    assert queue.waiting() == 1 and places == [2, 1]
    queue.release(holder)
    queue.release(await asyncio.wait_for(later, 1))
    assert served == ["a1", "c1"]


async def test_a_cancelled_task_leaves_the_queue() -> None:
    queue = FairQueue()
    holder = await _take(queue, "a", [], "a1")
    waiter = asyncio.create_task(_take(queue, "b", [], "b1"))
    await _settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert queue.waiting() == 0
    queue.release(holder)
    assert queue.snapshot()["busy"] is False


async def test_a_turn_released_from_a_worker_thread_wakes_the_next_waiter() -> None:
    queue = FairQueue()
    served: list[str] = []
    holder = await _take(queue, "a", served, "a1")
    waiter = asyncio.create_task(_take(queue, "b", served, "b1"))
    await _settle()
    thread = threading.Thread(target=queue.release, args=(holder,))
    thread.start()
    thread.join()
    queue.release(await asyncio.wait_for(waiter, 1))
    assert served == ["a1", "b1"]
