"""The Slack notifier: run notifications (`handlers.notifications`) turned into Slack messages.

It consumes the notifications topic like any subscriber (Pub/Sub push to `/pubsub/push`, or
the in-process bus) and posts through the `Chat` port (`bot.slack_chat`):

- with a bot token, one parent message per pull request (per deploy commit for deploys) and
  channel, edited in place with each pipeline's latest state, and every state change as a reply
  in its thread; the parent's channel ID (as Slack answers it: `chat.update` refuses channel
  names) and `ts` are kept in the store (`chat_threads`, key `<repo>#<pr>@<channel>`, or
  `<repo>@<sha>@<channel>` for deploys), so a restarted or second instance edits the same one.
  When the edit fails, the reply is still posted, then the failure is logged and raised;
- with an incoming webhook, each state change as a message of its own: webhooks can neither
  edit a message nor answer in a thread, and always post to the channel they were created for.

Which states notify comes from KFP_BOT_SLACK_NOTIFY_STATES. The channel of a run is, first to
match: KFP_BOT_SLACK_DEPLOY_CHANNEL for deploys (when set); `pipelines.<name>.slack_channel`,
then `slack_channel` of the `.kfp-bot.yaml` at the run's commit; KFP_BOT_SLACK_CHANNEL. The
file is read from the bot's checkout cache (the run's own commit, so a PR can route its own
runs); when it cannot be read the bot's channel is used and the reason logged.

A Slack failure raises: a transient one (`bot.slack_chat.SlackUnavailable`, a `ConnectionError`)
has Pub/Sub redeliver the notification; a change already posted is remembered (scope
`slack_post`), so a redelivery never posts it twice (it only edits the parent again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from handlers.context import HandlerContext
from handlers.messages.results import headline
from handlers.messages.slack_blocks import slack_change, slack_thread
from handlers.models import EventKind, Notification
from handlers.ports.chat import Chat, ChatMessage
from handlers.router import Router
from handlers.run_models import Run, RunState, Trigger
from handlers.run_results import load_results
from kfp_bot_errors import KfpBotError
from pipeline_registry.repo_config import CONFIG_FILE, RepoConfig, load_repo_config

router = Router()

POSTED_SCOPE = "slack_post"

DEFAULT_NOTIFY_STATES = frozenset({RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED, RunState.ERROR,
                                   RunState.CANCELLED})


@dataclass(frozen=True)
class ChatSettings:
    """Where and what the notifier posts; carried by the `Chat` adapter (`bot.slack_chat`)."""

    channel: str | None = None
    deploy_channel: str | None = None
    notify_states: frozenset[RunState] = DEFAULT_NOTIFY_STATES
    threads: bool = True
    """True for a bot token (parent message edited, replies in its thread); False for a webhook."""


class ConfiguredChat(Chat, Protocol):
    """A `Chat` that also says how it is to be used."""

    settings: ChatSettings


@dataclass
class _ThreadLocks:
    """One lock per thread key: two changes of one PR at once must not post two parent messages.

    This holds within one process (the embedded bus's workers, one App Engine instance's
    requests); two instances racing on a PR's very first change may still post two parents.
    """

    guard: threading.Lock = field(default_factory=threading.Lock)
    locks: dict[str, threading.Lock] = field(default_factory=dict)

    def lock(self, key: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(key, threading.Lock())


_LOCKS = _ThreadLocks()


@router.on(EventKind.NOTIFICATION)
def notify_slack(event: Notification, ctx: HandlerContext) -> None:
    """Post one run state change to Slack (when a chat is configured and the state notifies)."""
    chat = ctx.chat
    if chat is None:
        return
    settings = chat_settings(chat)
    if event.state not in settings.notify_states:
        return
    config = _repo_config(ctx, event)
    channel = _channel(event.pipeline, event.trigger, config, settings)
    if settings.threads and not channel:
        ctx.log.warning("notification %s not posted to Slack: no channel (set KFP_BOT_SLACK_CHANNEL or "
                        "slack_channel in %s)", event.key, CONFIG_FILE)
        return
    posted_key = f"{event.key}@{channel or 'webhook'}"
    posted = ctx.store.get_external(POSTED_SCOPE, posted_key) is not None
    if not (settings.threads and channel):
        if posted:
            ctx.log.info("notification %s already posted to Slack", event.key)
            return
        reply = chat.post(channel or "", slack_change(event, _headline(ctx, event.run_id, event.state), pages=ctx.pages))
        ctx.store.set_external(POSTED_SCOPE, posted_key, reply.ts or "posted")
        return
    key = thread_key(event, channel)
    with _LOCKS.lock(key):
        parent, update_failure = _update_parent(ctx, chat, event, channel, key,
                                                lambda run: _channel(run.pipeline, run.trigger, config, settings))
        if posted:  # a redelivery: the parent was refreshed above, the reply is there already
            ctx.log.info("notification %s already posted to Slack", event.key)
        else:
            # The reply goes out even when editing the parent failed: the change must reach Slack.
            reply = chat.post(parent.channel, slack_change(event, _headline(ctx, event.run_id, event.state), pages=ctx.pages),
                              thread=parent.ts)
            ctx.store.set_external(POSTED_SCOPE, posted_key, reply.ts or "posted")
    if update_failure is not None:
        ctx.log.error("Slack: the thread message %s of %s (run %s) was not updated: %s", parent.ts, key,
                      event.run_id, update_failure)
        raise update_failure


def _headline(ctx: HandlerContext, run_id: str, state: RunState) -> str:
    """The headline metric of a finished run (`handlers.run_results`), or nothing."""
    return headline(load_results(ctx.store, run_id)) if state.terminal else ""


def chat_settings(chat: Chat) -> ChatSettings:
    """The settings a chat adapter carries (defaults for a bare `Chat`)."""
    settings = getattr(chat, "settings", None)
    return settings if isinstance(settings, ChatSettings) else ChatSettings()


def thread_key(event: Notification, channel: str) -> str:
    """The store key of the parent message of `event`'s PR (or deploy commit) in `channel`."""
    subject = f"{event.repo}#{event.pr}" if event.pr is not None else f"{event.repo}@{event.sha}"
    return f"{subject}@{channel}"


def channel_for(ctx: HandlerContext, event: Notification, settings: ChatSettings) -> str | None:
    """The channel of `event` (see the module docstring for the order)."""
    return _channel(event.pipeline, event.trigger, _repo_config(ctx, event), settings)


def _channel(pipeline: str, trigger: Trigger, config: RepoConfig | None, settings: ChatSettings) -> str | None:
    if trigger is Trigger.DEPLOY and settings.deploy_channel:
        return settings.deploy_channel
    configured = (config.override(pipeline).slack_channel or config.slack_channel) if config else None
    return configured or settings.channel


def _repo_config(ctx: HandlerContext, event: Notification) -> RepoConfig | None:
    """`.kfp-bot.yaml` at the run's commit (None when it cannot be read: the bot's channels apply)."""
    from handlers.runs import checkout

    run = ctx.store.get_run(event.run_id)
    if run is None or not run.clone_url:
        return None
    try:
        path = checkout(ctx, run) / CONFIG_FILE
        return load_repo_config(path.read_text(encoding="utf-8") if path.is_file() else None)
    except (KfpBotError, OSError) as exc:
        ctx.log.warning("Slack channel of %s from %s not read, using the bot's channel: %s", event.key,
                        CONFIG_FILE, exc)
        return None


def _update_parent(ctx: HandlerContext, chat: Chat, event: Notification, channel: str, key: str,
                   channel_of: Callable[[Run], str | None]) -> tuple[ChatMessage, KfpBotError | None]:
    """Post the parent message of `key`, or edit it with the latest states of the runs that
    notify in `channel`: the parent, and the edit's failure (the caller still replies, then raises)."""
    if event.pr is not None:
        runs = ctx.store.list_runs(repo=event.repo, pr=event.pr)
        # The PR as it is now: the runs of its newest head (older heads were superseded).
        head = max(runs, key=lambda r: r.created_at).sha if runs else event.sha
        runs = [r for r in runs if r.sha == head]
    else:
        runs = [r for r in ctx.store.list_runs(repo=event.repo, sha=event.sha) if r.trigger is Trigger.DEPLOY]
    shown = [r for r in runs if channel_of(r) == channel]
    message = slack_thread(event, shown, {r.id: _headline(ctx, r.id, r.state) for r in shown}, pages=ctx.pages)
    parent = ctx.store.get_chat_thread(key)
    if parent is None:
        parent = chat.post(channel, message)
        ctx.store.set_chat_thread(key, parent)
        return parent, None
    try:
        chat.update(parent.channel, parent.ts, message)  # the channel's ID: Slack edits by ID only
    except KfpBotError as exc:
        return parent, exc
    return parent, None
