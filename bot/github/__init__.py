"""The GitHub side of kfp-bot: the only package that imports PyGithub (`github`).

`GitHubClients` turns settings into authenticated, retrying clients (App installation or
token); `GitHubReporter` shows runs as check runs or commit statuses and keeps one comment per
pull request; `GitHubPermissions` answers who may run pipelines; `GitHubPulls` reads pull
requests for commands. Every failure surfaces as `GitHubError`, a `KfpBotError`.
"""

from bot.github.client import GitHubClients, GitHubError, GitHubMode, RetryPolicy
from bot.github.github_reporter import GitHubReporter
from bot.github.permissions import GitHubPermissions
from bot.github.pulls import GitHubPulls

__all__ = ["GitHubClients", "GitHubError", "GitHubMode", "GitHubPermissions", "GitHubPulls", "GitHubReporter",
           "RetryPolicy"]
