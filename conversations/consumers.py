"""The conversation socket: replays what a client missed, then streams live events.

Connect to ``/ws/conversations/<id>/?after=<seq>`` (``&format=html`` for htmx fragments). A visitor
who is not logged in, an unknown conversation and another user's are refused at the handshake
(HTTP 403, indistinguishable on purpose). Each frame from the client is one JSON object, decoded by
``config.inputs.json_loads``; a frame that is binary, not JSON, too deeply nested or holding a NUL
or a lone surrogate gets an ``error`` event and the socket stays open. No event sent is larger than
``realtime.EVENT_MAX_BYTES``: a bigger message arrives cut, marked ``"truncated": true`` (the REST
API has it whole). Clients may send ``{"type": "message.post", "text": ...}``, ``{"type": "input.answer", "text": ...}``
(the answer to a run waiting in ``awaiting_input``), ``{"type": "tool.approval", "approval_id": N,
"approve": true|false}`` (a tool call waiting for the user's approval) and ``{"type": "run.cancel"}``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import ValidationError

from config import inputs
from config.errors import ApplicationError
from conversations import realtime, rendering, selectors, services
from conversations.models import Conversation, Run

# Closing before accepting refuses the handshake: Daphne answers HTTP 403 and a browser never sees
# this code (only in-process test clients do).
CLOSE_NOT_FOUND = 4404


class ConversationConsumer(AsyncJsonWebsocketConsumer):
    conversation_id: int
    group: str
    last_seq: int
    html: bool

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        user_id = user.pk if user is not None and user.is_authenticated else None
        if not await database_sync_to_async(selectors.conversation_owned)(
            user_id=user_id, conversation_id=self.conversation_id
        ):
            # Unknown, or someone else's: indistinguishable on purpose.
            await self.close(code=CLOSE_NOT_FOUND)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        self.last_seq = inputs.bounded_int(query.get("after", ["0"])[0], minimum=0) or 0
        self.html = query.get("format", ["json"])[0] == "html"
        self.group = realtime.group_name(self.conversation_id)
        # Join first, then replay: anything published meanwhile is deduplicated by seq.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._catch_up()
        # The current run state too: a client that was away may have missed the run's end.
        latest = await database_sync_to_async(selectors.run_latest)(conversation_id=self.conversation_id)
        if latest is not None:
            await self.conversation_run({"type": realtime.RUN, "run": latest})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale DB connections (a hop to the DB thread) before every event; token
        # chunks, by far the most frequent event, never touch the database, so skip it for them.
        if message.get("type") == realtime.CHUNK:
            await self.conversation_chunk(message)
            return
        await super().dispatch(message)

    # --- events from the channel layer
    async def _catch_up(self) -> None:
        """Send what the database has after ``last_seq``. The channel layer may drop events when a
        socket falls behind (a full channel); the database never does, so gaps are healed here."""
        missed = await database_sync_to_async(selectors.messages_after)(
            conversation_id=self.conversation_id, after=self.last_seq
        )
        for message in missed:
            await self._send_message(message)

    async def conversation_message(self, event: dict[str, Any]) -> None:
        message = event["message"]
        if message["seq"] <= self.last_seq:
            return
        if message["seq"] > self.last_seq + 1:
            await self._catch_up()  # includes this message
            return
        await self._send_message(message)

    async def _send_message(self, message: dict[str, Any]) -> None:
        if message["seq"] <= self.last_seq:
            return
        self.last_seq = message["seq"]
        message = realtime.capped_message(message)
        event = {"type": realtime.MESSAGE, "message": message}
        if self.html:
            await self.send(text_data=rendering.message_fragment(message))
        else:
            await self.send_json(event)

    async def conversation_message_update(self, event: dict[str, Any]) -> None:
        message = event["message"]
        if message["seq"] > self.last_seq:
            return  # not sent yet: the catch-up sends it as it is now
        message = realtime.capped_message(message)
        if not self.html:
            await self.send_json({**event, "message": message})
        elif fragment := rendering.message_update_fragment(message):
            await self.send(text_data=fragment)

    async def conversation_chunk(self, event: dict[str, Any]) -> None:
        if self.html:
            await self.send(text_data=rendering.chunk_fragment(event))
        else:
            await self.send_json(event)

    async def conversation_run(self, event: dict[str, Any]) -> None:
        if event["run"]["status"] in Run.FINISHED_STATUSES:
            await self._catch_up()  # nothing of a finished run may be missing
        if self.html:
            await self.send(text_data=rendering.run_fragment(event["run"]))
        else:
            await self.send_json(event)

    # --- actions from the client
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """One JSON object per text frame; anything else is answered with an error, never a close."""
        if text_data is None:
            await self._error("Send each action as a JSON text frame, not a binary one.")
            return
        try:
            content = inputs.json_loads(text_data)
        except inputs.JSONInputError as exc:
            await self._error(f"Send each action as one JSON object. {exc}")
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("type") if isinstance(content, dict) else None
        try:
            if action == "message.post":
                await database_sync_to_async(self._post)(content.get("text"))
            elif action == "run.cancel":
                await database_sync_to_async(self._cancel)()
            elif action == "input.answer":
                await database_sync_to_async(self._answer)(content.get("text"))
            elif action == "run.pause":
                await database_sync_to_async(self._pause)()
            elif action == "tool.approval":
                await database_sync_to_async(self._tool_approval)(content.get("approval_id"), content.get("approve"))
            else:
                await self._error(
                    "Unknown action: send type 'message.post', 'input.answer', 'tool.approval', "
                    "'run.pause' or 'run.cancel'."
                )
        except ValidationError as exc:
            await self._error(" ".join(exc.messages))
        except ApplicationError as exc:
            await self._error(exc.message)

    def _conversation(self) -> Conversation:
        return Conversation.objects.get(pk=self.conversation_id)

    def _post(self, text: Any) -> None:
        services.message_post(conversation=self._conversation(), user=self.scope["user"], text=text)

    def _active_run(self, status: str) -> Run | None:
        # A conversation has at most one active run (a unique constraint).
        run = selectors.run_active(conversation=self._conversation())
        return run if run is not None and run.status == status else None

    def _answer(self, text: Any) -> None:
        run = self._active_run(Run.Status.AWAITING_INPUT)
        if run is None:
            raise ApplicationError("Nothing is waiting for an answer in this conversation.")
        services.run_answer(run=run, user=self.scope["user"], text=text)

    def _tool_approval(self, approval_id: Any, approve: Any) -> None:
        """``{"type": "tool.approval", "approval_id": N, "approve": true|false}``: a paused tool call."""
        from tools.services import tool_approval_answer

        if not isinstance(approve, bool):
            raise ValidationError("Send approve as true or false.")
        tool_approval_answer(
            approval_id=approval_id, user=self.scope["user"], approve=approve, conversation_id=self.conversation_id
        )

    def _pause(self) -> None:
        run = self._active_run(Run.Status.RUNNING)
        if run is not None:
            services.run_pause(run=run)

    def _cancel(self) -> None:
        run = selectors.run_active(conversation=self._conversation())
        if run is not None:
            services.run_cancel(run=run)

    async def _error(self, text: str) -> None:
        if self.html:
            await self.send(text_data=rendering.error_fragment(text))
        else:
            await self.send_json({"type": "error", "error": text})
