"""What the bot records the moment a webhook is accepted, before the event waits on the bus.

Events wait in a queue (or on Pub/Sub) before a handler runs; a pull request's head may move in
between. So the head each `pull_request` delivery announces is stored with the delivery, and a comment is
stamped with the head the bot knew when it arrived: `/run` and `/ok-to-run` on an untrusted
author's pull request then bind to that commit (as a maintainer saw it), not to whatever the head
is when the handler runs. Both happen inside the transaction that accepts the delivery
(`Store.accept_delivery`): the comment gets the head stored when its delivery is committed
(heads announced by deliveries accepted before it included), and a duplicate stores nothing,
so a redelivered old event never moves the head back.
"""

from __future__ import annotations

import dataclasses

from handlers.models import Event, IssueCommentEvent, PullRequestAction, PullRequestEvent
from handlers.ports.store import StoredPull


def comment_pull(event: Event) -> tuple[str, int] | None:
    """(repository, number) of the pull request whose stored head a comment is to be bound to;
    None for other events and for a comment already bound."""
    if isinstance(event, IssueCommentEvent) and event.head_sha is None:
        return event.repo.full_name, event.number
    return None


def stamped(event: Event, head_sha: str) -> Event:
    """A comment bound to `head_sha`, the head stored for its pull request (other events as they are)."""
    if isinstance(event, IssueCommentEvent):
        return dataclasses.replace(event, head_sha=head_sha)
    return event


def announced_head(event: Event) -> StoredPull | None:
    """The head a `pull_request` delivery announces, to store in the transaction that accepts it
    (`Store.accept_delivery`: never for duplicates, so a redelivered old event does not move the
    head back)."""
    if isinstance(event, PullRequestEvent) and event.action is not PullRequestAction.CLOSED:
        return StoredPull(repo=event.repo, pull=event.pull, installation_id=event.installation_id)
    return None
