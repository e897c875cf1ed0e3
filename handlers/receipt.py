"""What the bot records the moment a webhook is accepted, before the event waits on the bus.

Events wait in a queue (or on Pub/Sub) before a handler runs; a pull request's head may move in
between. So the head each `pull_request` delivery announces is stored with the delivery, and a comment is
stamped with the head the bot knew when it arrived: `/run` and `/ok-to-run` on an untrusted
author's pull request then bind to that commit (as a maintainer saw it), not to whatever the head
is when the handler runs.
"""

from __future__ import annotations

import dataclasses

from handlers.models import Event, IssueCommentEvent, PullRequestAction, PullRequestEvent
from handlers.ports import Store, StoredPull


def stamp(event: Event, store: Store) -> Event:
    """A comment with the head the bot knows now (read-only: done before the delivery is stored)."""
    if isinstance(event, IssueCommentEvent) and event.head_sha is None:
        stored = store.get_pull(event.repo.full_name, event.number)
        if stored is not None:
            return dataclasses.replace(event, head_sha=stored.pull.head_sha)
    return event


def announced_head(event: Event) -> StoredPull | None:
    """The head a `pull_request` delivery announces, to store in the transaction that accepts it
    (`Store.accept_delivery`: never for duplicates, so a redelivered old event does not move the
    head back)."""
    if isinstance(event, PullRequestEvent) and event.action is not PullRequestAction.CLOSED:
        return StoredPull(repo=event.repo, pull=event.pull, installation_id=event.installation_id)
    return None
