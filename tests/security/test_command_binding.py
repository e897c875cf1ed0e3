"""`/run` and `/ok-to-run` on an untrusted author's pull request bind to the head of the moment
of the comment: a commit pushed after the comment (before the run starts) never runs without a
new command. End to end with the fake GitHub, whose pull request head moves between the
comment's arrival and its handling, as it does when a push races a queued comment.
"""

from __future__ import annotations

from tests.handlers.conftest import MAINTAINER, PR, READER, Bot

HELLO = "pipelines/hello-pipeline/settings.yaml"
FORK = "mallory/kfp-monorepo"


def _commit(bot: Bot, name: str, repeat: int, start: str | None = None) -> str:
    text = (bot.repo.root / HELLO).read_text().replace("repeat: 3", f"repeat: {repeat}")
    return bot.branch(name, {HELLO: text}, start=start)


def _push_without_webhook(bot: Bot, head: str) -> None:
    """GitHub's PR now has `head`; its `synchronize` webhook is still on its way."""
    bot.github.update_pull("octo-org/kfp-monorepo", PR, head_sha=head)


def test_run_on_a_fork_pr_uses_the_head_of_the_comment_not_a_later_push(bot: Bot) -> None:
    reviewed = _commit(bot, "reviewed", repeat=4)
    bot.open_pull(reviewed, author=READER, fork=FORK)
    bot.settle()
    assert {r["state"] for r in bot.runs(pr=PR)} == {"skipped"}  # waits for a maintainer

    later = _commit(bot, "later", repeat=9, start=reviewed)
    _push_without_webhook(bot, later)  # the push races the comment: the bot has not seen it yet
    bot.comment("/run hello-pipeline", author=MAINTAINER)  # accepted: bound to `reviewed`
    bot.settle()

    [run] = [r for r in bot.runs(pr=PR) if r["trigger"] == "command"]
    assert (run["sha"], run["state"], run["parameters"]["repeat"]) == (reviewed, "succeeded", 4)
    reply = bot.replies()[-1]
    assert f"`{later[:7]}`" in reply and "comment again" in reply

    bot.open_pull(later, action="synchronize", author=READER, fork=FORK)
    bot.settle()
    at_later = [r for r in bot.runs(pr=PR) if r["sha"] == later]
    assert at_later and {r["state"] for r in at_later} == {"skipped"}  # a newer head needs a new command


def test_ok_to_run_approves_only_the_commented_head(bot: Bot) -> None:
    reviewed = _commit(bot, "reviewed", repeat=4)
    bot.open_pull(reviewed, author=READER, fork=FORK)
    bot.settle()

    later = _commit(bot, "later", repeat=9, start=reviewed)
    _push_without_webhook(bot, later)
    bot.comment("/ok-to-run", author=MAINTAINER)
    bot.settle()

    ran = [r for r in bot.runs(pr=PR) if r["state"] != "skipped"]
    assert [(r["sha"], r["state"]) for r in ran] == [(reviewed, "succeeded")]
    assert "comment `/ok-to-run` again" in bot.replies()[-1]
    bot.open_pull(later, action="synchronize", author=READER, fork=FORK)
    bot.settle()
    assert {r["state"] for r in bot.runs(pr=PR) if r["sha"] == later} == {"skipped"}


def test_a_trusted_authors_pr_runs_its_current_head(bot: Bot) -> None:
    first = _commit(bot, "first", repeat=4)
    bot.open_pull(first)
    bot.settle()
    second = _commit(bot, "second", repeat=5, start=first)
    _push_without_webhook(bot, second)
    bot.comment("/run hello-pipeline", author=MAINTAINER)
    bot.settle()
    [run] = [r for r in bot.runs(pr=PR) if r["trigger"] == "command"]
    assert run["sha"] == second
