"""Which clone URLs the bot fetches: a payload's URL is checked against the bot's policy before
git sees it (pull requests, pushes, and the default branch's trusted settings)."""

from __future__ import annotations

from urllib.parse import urlparse

from handlers.context import Policy
from kfp_bot_errors import KfpBotError
from pipeline_registry.gitargs import GitArgumentError, check_url


class CloneUrlRefused(KfpBotError):
    """A payload's clone URL that the bot's policy does not allow."""


def check_clone_url(url: str, policy: Policy) -> None:
    """Only https (or ssh) URLs of the configured GitHub host, or absolute local paths and file
    URLs when explicitly allowed; never a value git could read as an option."""
    try:
        check_url(url, "clone URL")
    except GitArgumentError as exc:
        raise CloneUrlRefused(str(exc), hint=exc.hint) from None
    parsed = urlparse(url)
    if parsed.scheme in ("https", "ssh") and parsed.hostname == policy.github_host:
        return
    if policy.allow_local_repos and (parsed.scheme == "file" or (not parsed.scheme and url.startswith("/"))):
        return
    raise CloneUrlRefused(f"clone URL {url!r} is not allowed",
                          hint=f"only https://{policy.github_host}/ repositories are cloned"
                               + ("" if policy.allow_local_repos else
                                  " (set KFP_BOT_ALLOW_LOCAL_REPOS=1 for local paths)"))
