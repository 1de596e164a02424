"""Send one message to a team or agent and stream the reply in the terminal.

It takes the same path as the browser: ``message_post`` -> runner -> executor -> channel layer.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.models import Agent, Team
from config.errors import ApplicationError
from conversations import realtime, selectors, services
from conversations.models import Conversation
from conversations.runner import InlineRunner, get_runner


class Command(BaseCommand):
    help = "Chat with a team or an agent from the terminal, streaming the reply."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("message", help="What to say.")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--team", help="Team slug (default: the first team).")
        target.add_argument("--agent", help="Agent slug, to talk to one agent.")
        target.add_argument("--conversation", type=int, help="Continue this conversation (its id).")
        parser.add_argument("--user", default="demo", help="Username the conversation belongs to (default: demo).")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}: run `manage.py seed_demo` or pass --user.")
        conversation = self._conversation(user, options)
        self.stdout.write(self.style.NOTICE(f"Conversation {conversation.pk}: {conversation.title}"))
        try:
            status = asyncio.run(self._chat(user, conversation, options["message"]))
        except (ValidationError, ApplicationError) as exc:
            message = exc.message if isinstance(exc, ApplicationError) else " ".join(exc.messages)
            raise CommandError(message) from exc
        if status != "completed":
            raise CommandError(f"The run ended {status}.")

    def _conversation(self, user: Any, options: dict[str, Any]) -> Conversation:
        if options["conversation"]:
            return selectors.conversation_get(user=user, conversation_id=options["conversation"])
        if options["agent"]:
            agent = Agent.objects.filter(slug=options["agent"]).first()
            if agent is None:
                raise CommandError(f"No agent {options['agent']!r}.")
            return services.conversation_create(owner=user, agent=agent)
        team = Team.objects.filter(slug=options["team"]).first() if options["team"] else Team.objects.first()
        if team is None:
            raise CommandError("No such team: run `manage.py seed_demo` or pass --team / --agent.")
        return services.conversation_create(owner=user, team=team)

    async def _chat(self, user: Any, conversation: Conversation, text: str) -> str:
        runner = get_runner()
        if isinstance(runner, InlineRunner):
            runner.bind_loop(asyncio.get_running_loop())
        layer = get_channel_layer()
        assert layer is not None
        channel = await layer.new_channel()
        await layer.group_add(realtime.group_name(conversation.pk), channel)
        _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text=text)
        speaker = None
        try:
            while True:
                event = await layer.receive(channel)
                if event["type"] == realtime.CHUNK:
                    if event["source"] != speaker:
                        speaker = event["source"]
                        self.stdout.write(self.style.MIGRATE_HEADING(f"\n{speaker}: "), ending="")
                    self.stdout.write(event["text"], ending="")
                    sys.stdout.flush()
                elif event["type"] == realtime.MESSAGE:
                    self._print_message(event["message"], streamed=event["message"]["source"] == speaker)
                    speaker = None
                elif event["type"] == realtime.RUN and event["run"]["id"] == run.pk:
                    status: str = event["run"]["status"]
                    if status in ("queued", "running"):
                        continue
                    if event["run"]["error"]:
                        self.stderr.write(self.style.ERROR(f"\n{event['run']['error']}"))
                    self.stdout.write(self.style.NOTICE(f"\n[{status}] {event['run']['stop_reason']}".rstrip()))
                    return status
        except (KeyboardInterrupt, asyncio.CancelledError):
            await sync_to_async(services.run_cancel)(run=run)
            raise

    def _print_message(self, message: dict[str, Any], *, streamed: bool) -> None:
        kind = message["type"]
        if kind == "user":
            return
        if kind == "text":
            if streamed:
                self.stdout.write("")
            else:
                self.stdout.write(self.style.MIGRATE_HEADING(f"\n{message['source']}: ") + message["content"])
        elif kind == "tool_call":
            self.stdout.write(self.style.WARNING(f"\n{message['source']} calls {message['content']}"))
        elif kind == "tool_result":
            self.stdout.write(self.style.WARNING(f"  -> {message['content']}"))
        else:
            self.stdout.write(f"\n[{kind}] {message['source']}: {message['content']}")
