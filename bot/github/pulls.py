"""Pull request look-ups for commands: the PR as it is on GitHub now (head commit, clone URL).

A `/run` comment carries only the PR number; the head may have moved since the last
`pull_request` event the bot saw, so the command handler asks GitHub.
"""

from __future__ import annotations

from github.PullRequest import PullRequest

from bot.github.client import GitHubClients, GitHubError
from handlers.models import PullRequestRef, RepoRef


class GitHubPulls:
    """`PullRequests` from GET /repos/{owner}/{repo}/pulls/{number}."""

    def __init__(self, clients: GitHubClients) -> None:
        self.clients = clients

    def get_pull(self, repo: RepoRef, number: int, installation_id: int | None) -> PullRequestRef | None:
        """The pull request now, or None when `repo` has no PR `number` (an issue, or deleted)."""
        gh = self.clients.repo(repo.full_name, installation_id)
        try:
            return self.clients.call(f"reading pull request {repo.full_name}#{number}",
                                     lambda: _to_ref(gh.get_pull(number)))
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise


def _to_ref(pull: PullRequest) -> PullRequestRef:
    head_repo = pull.head.repo  # None when the fork was deleted
    return PullRequestRef(
        number=pull.number, title=pull.title or "", author=pull.user.login if pull.user else "ghost",
        html_url=pull.html_url or "", head_sha=pull.head.sha, head_ref=pull.head.ref,
        head_repo=head_repo.full_name if head_repo is not None else "",
        head_clone_url=head_repo.clone_url if head_repo is not None else "",
        base_sha=pull.base.sha, base_ref=pull.base.ref, draft=bool(pull.draft),
        author_association=pull.author_association or "NONE",
    )
