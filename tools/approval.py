"""Calls that need a person's yes: ask in the chat, wait for the answer, go on.

The request is a ``ToolApproval`` row plus a ``Message`` of type ``approval`` in the conversation
(published like any message); the run shows ``awaiting_input`` while it waits. The answer comes from
the socket (``{"action": "tool_approval", ...}``), the API or the chat's buttons, all through
``tools.services.tool_approval_answer``. The waiting call polls the row, so the answer may come from
any process. No answer within ``LODESTONE_TOOL_APPROVAL_TIMEOUT_SECONDS``, or a cancelled run: denied.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import sync_to_async

from tools import conf
from tools.runtime import CallContext, ToolSpec


async def ask_in_conversation(
    spec: ToolSpec, arguments: dict[str, Any], context: CallContext, call_id: str
) -> tuple[bool, str]:
    from conversations import realtime
    from conversations.models import Run
    from tools import services
    from tools.models import ToolApproval

    if context.conversation_id is None:
        return False, "there is no conversation to ask in"
    approval, message, run = await sync_to_async(services.tool_approval_request)(
        spec=spec, arguments=arguments, context=context, call_id=call_id
    )
    await realtime.publish(context.conversation_id, realtime.message_event(message))
    if run is not None:
        await realtime.publish(context.conversation_id, realtime.run_event(run))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + float(conf.get("LODESTONE_TOOL_APPROVAL_TIMEOUT_SECONDS"))
    poll = float(conf.get("LODESTONE_TOOL_APPROVAL_POLL_SECONDS"))
    status: str = ToolApproval.Status.PENDING
    read = sync_to_async(services.tool_approval_status)
    try:
        while True:
            status, cancelled = await read(approval_id=approval.pk)
            if status != ToolApproval.Status.PENDING:
                break
            if cancelled:
                status = ToolApproval.Status.EXPIRED
                break
            if loop.time() > deadline:
                status = ToolApproval.Status.EXPIRED
                break
            await asyncio.sleep(poll)
    finally:
        if status in (ToolApproval.Status.PENDING, ToolApproval.Status.EXPIRED):
            await sync_to_async(services.tool_approval_expire)(approval_id=approval.pk)
        updated, resumed = await sync_to_async(services.tool_approval_resume)(approval_id=approval.pk)
        if updated is not None:
            await realtime.publish(context.conversation_id, realtime.message_update_event(updated))
        if resumed is not None and resumed.status == Run.Status.RUNNING:
            await realtime.publish(context.conversation_id, realtime.run_event(resumed))
    if status == ToolApproval.Status.APPROVED:
        return True, ""
    if status == ToolApproval.Status.DENIED:
        return False, "the user denied it"
    return False, "no one approved it in time"
