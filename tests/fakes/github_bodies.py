"""GitHub's JSON representations of the fake's records, shaped like api.github.com's answers.

API links (`url`, `issue_url`, ...) point at the fake so a client following them stays on it;
`html_url` links point at https://github.com like GitHub's.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.fakes.github_model import (
    App,
    CheckRun,
    Comment,
    GitHubState,
    Installation,
    Issue,
    Pull,
    Reaction,
    Repo,
    Role,
    Status,
    User,
    UserType,
)

WEB = "https://github.com"


def node_id(kind: str, id: int) -> str:
    """A GraphQL node id in GitHub's legacy format, e.g. MDQ6VXNlcjE= for User 1."""
    return base64.b64encode(f"{len(kind):02d}:{kind}{id}".encode()).decode()


class Bodies:
    """Renders records as JSON for the fake served at `api`."""

    def __init__(self, api: str, state: GitHubState) -> None:
        self.api = api
        self.state = state

    def user(self, user: User) -> dict[str, Any]:
        url = f"{self.api}/users/{user.login}"
        html = (f"{WEB}/apps/{user.login.removesuffix('[bot]')}" if user.type is UserType.BOT
                else f"{WEB}/{user.login}")
        return {
            "login": user.login, "id": user.id, "node_id": node_id(user.type.value, user.id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4", "gravatar_id": "",
            "url": url, "html_url": html, "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}", "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs", "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}", "received_events_url": f"{url}/received_events",
            "type": user.type.value, "site_admin": False,
        }

    def repo(self, repo: Repo) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.full_name}"
        return {
            "id": repo.id, "node_id": node_id("Repository", repo.id), "name": repo.name,
            "full_name": repo.full_name, "private": repo.private, "owner": self.user(repo.owner),
            "html_url": f"{WEB}/{repo.full_name}", "description": None, "fork": repo.fork, "url": url,
            "issues_url": f"{url}/issues{{/number}}", "pulls_url": f"{url}/pulls{{/number}}",
            "statuses_url": f"{url}/statuses/{{sha}}", "commits_url": f"{url}/commits{{/sha}}",
            "issue_comment_url": f"{url}/issues/comments{{/number}}",
            "collaborators_url": f"{url}/collaborators{{/collaborator}}",
            "git_url": f"git://github.com/{repo.full_name}.git", "ssh_url": f"git@github.com:{repo.full_name}.git",
            "clone_url": repo.clone_url, "svn_url": f"{WEB}/{repo.full_name}", "homepage": None,
            "created_at": repo.created_at, "updated_at": repo.created_at, "pushed_at": repo.created_at,
            "size": 0, "language": "Python", "archived": False, "disabled": False,
            "visibility": "private" if repo.private else "public", "default_branch": repo.default_branch,
            "open_issues_count": sum(i.state == "open" for i in repo.issues.values()),
            "forks_count": 0, "stargazers_count": 0, "watchers_count": 0, "has_issues": True,
        }

    def pull(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.full_name}/pulls/{pull.number}"
        issue_url = f"{self.api}/repos/{repo.full_name}/issues/{pull.number}"
        html = f"{WEB}/{repo.full_name}/pull/{pull.number}"

        def branch(ref: str, sha: str, where: Repo) -> dict[str, Any]:
            return {"label": f"{where.owner.login}:{ref}", "ref": ref, "sha": sha,
                    "user": self.user(where.owner), "repo": self.repo(where)}

        return {
            "url": url, "id": pull.id, "node_id": node_id("PullRequest", pull.id), "html_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": issue_url,
            "commits_url": f"{url}/commits", "review_comments_url": f"{url}/comments",
            "comments_url": f"{issue_url}/comments",
            "statuses_url": f"{self.api}/repos/{repo.full_name}/statuses/{pull.head_sha}",
            "number": pull.number, "state": pull.state, "locked": False, "title": pull.title,
            "user": self.user(pull.user), "body": pull.body, "labels": [], "milestone": None,
            "created_at": pull.created_at, "updated_at": pull.created_at, "closed_at": None,
            "merged_at": pull.created_at if pull.merged else None, "merge_commit_sha": None,
            "assignee": None, "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "draft": pull.draft, "head": branch(pull.head_ref, pull.head_sha, pull.head_repo),
            "base": branch(pull.base_ref, pull.base_sha, repo),
            "author_association": self.association(repo, pull.user), "auto_merge": None,
            "merged": pull.merged, "mergeable": True, "mergeable_state": "clean", "comments": len(
                repo.issues[pull.number].comment_ids), "review_comments": 0, "commits": 1,
            "additions": 1, "deletions": 0, "changed_files": 1, "maintainer_can_modify": False,
        }

    def issue(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.full_name}/issues/{issue.number}"
        pull = repo.pulls.get(issue.number)
        kind = "pull" if pull else "issues"
        body: dict[str, Any] = {
            "url": url, "repository_url": f"{self.api}/repos/{repo.full_name}",
            "labels_url": f"{url}/labels{{/name}}", "comments_url": f"{url}/comments",
            "events_url": f"{url}/events", "html_url": f"{WEB}/{repo.full_name}/{kind}/{issue.number}",
            "id": issue.id, "node_id": node_id("Issue", issue.id), "number": issue.number,
            "title": issue.title, "user": self.user(issue.user), "labels": [], "state": issue.state,
            "locked": False, "assignee": None, "assignees": [], "milestone": None,
            "comments": len(issue.comment_ids), "created_at": issue.created_at,
            "updated_at": issue.updated_at, "closed_at": None,
            "author_association": self.association(repo, issue.user), "body": issue.body,
        }
        if pull:
            html = f"{WEB}/{repo.full_name}/pull/{issue.number}"
            body["draft"] = pull.draft
            body["pull_request"] = {"url": f"{self.api}/repos/{repo.full_name}/pulls/{issue.number}",
                                    "html_url": html, "diff_url": f"{html}.diff",
                                    "patch_url": f"{html}.patch", "merged_at": None}
        return body

    def comment(self, comment: Comment) -> dict[str, Any]:
        repo = self.state.repos[comment.repo]
        url = f"{self.api}/repos/{comment.repo}/issues/comments/{comment.id}"
        kind = "pull" if comment.issue_number in repo.pulls else "issues"
        counts = {content: 0 for content in ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")}
        for reaction in self.state.reactions:
            if reaction.comment_id == comment.id:
                counts[reaction.content.value] += 1
        app = self.state.apps.get(comment.app_id) if comment.app_id else None
        return {
            "url": url,
            "html_url": f"{WEB}/{comment.repo}/{kind}/{comment.issue_number}#issuecomment-{comment.id}",
            "issue_url": f"{self.api}/repos/{comment.repo}/issues/{comment.issue_number}",
            "id": comment.id, "node_id": node_id("IssueComment", comment.id), "user": self.user(comment.user),
            "created_at": comment.created_at, "updated_at": comment.updated_at,
            "author_association": self.association(repo, comment.user), "body": comment.body,
            "performed_via_github_app": self.app(app) if app else None,
            "reactions": {"url": f"{url}/reactions", "total_count": sum(counts.values()), **counts},
        }

    def reaction(self, reaction: Reaction) -> dict[str, Any]:
        return {"id": reaction.id, "node_id": node_id("Reaction", reaction.id), "user": self.user(reaction.user),
                "content": reaction.content.value, "created_at": reaction.created_at}

    def check_run(self, run: CheckRun) -> dict[str, Any]:
        repo = self.state.repos[run.repo]
        url = f"{self.api}/repos/{run.repo}/check-runs/{run.id}"
        pulls = [p for p in repo.pulls.values()
                 if p.head_sha == run.head_sha and p.head_repo is repo and p.state == "open"]
        output = {"title": None, "summary": None, "text": None, **run.output}
        output.pop("annotations", None)
        output.pop("images", None)
        output.update(annotations_count=len(run.output.get("annotations", [])),
                      annotations_url=f"{url}/annotations")
        return {
            "id": run.id, "name": run.name, "node_id": node_id("CheckRun", run.id), "head_sha": run.head_sha,
            "external_id": run.external_id or "", "url": url,
            "html_url": f"{WEB}/{run.repo}/runs/{run.id}",
            "details_url": run.details_url or f"{WEB}/apps/{self.state.apps[run.app_id].slug}",
            "status": run.status.value, "conclusion": run.conclusion.value if run.conclusion else None,
            "started_at": run.started_at, "completed_at": run.completed_at, "output": output,
            "check_suite": {"id": run.check_suite_id}, "app": self.app(self.state.apps[run.app_id]),
            "pull_requests": [self.pull_reference(repo, p) for p in pulls],
        }

    def pull_reference(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        """The short pull request form inside a check run."""
        short_repo = {"id": repo.id, "url": f"{self.api}/repos/{repo.full_name}", "name": repo.name}
        return {"url": f"{self.api}/repos/{repo.full_name}/pulls/{pull.number}", "id": pull.id,
                "number": pull.number,
                "head": {"ref": pull.head_ref, "sha": pull.head_sha, "repo": short_repo},
                "base": {"ref": pull.base_ref, "sha": pull.base_sha, "repo": short_repo}}

    def status(self, status: Status) -> dict[str, Any]:
        return {
            "url": f"{self.api}/repos/{status.repo}/statuses/{status.sha}", "id": status.id,
            "node_id": node_id("StatusContext", status.id), "state": status.state.value,
            "description": status.description, "target_url": status.target_url, "context": status.context,
            "created_at": status.created_at, "updated_at": status.created_at,
            "avatar_url": f"https://avatars.githubusercontent.com/u/{status.creator.id}?v=4",
            "creator": self.user(status.creator),
        }

    def app(self, app: App) -> dict[str, Any]:
        return {
            "id": app.id, "slug": app.slug, "node_id": node_id("Integration", app.id),
            "owner": self.user(app.owner),
            "name": app.name, "description": "", "external_url": f"{WEB}/apps/{app.slug}",
            "html_url": f"{WEB}/apps/{app.slug}", "created_at": app.created_at, "updated_at": app.created_at,
            "permissions": dict(app.permissions), "events": ["check_run", "issue_comment", "pull_request", "push"],
            "installations_count": sum(i.app_id == app.id for i in self.state.installations.values()),
        }

    def installation(self, installation: Installation) -> dict[str, Any]:
        app = self.state.apps[installation.app_id]
        return {
            "id": installation.id, "account": self.user(installation.account),
            "repository_selection": "all" if installation.repos is None else "selected",
            "access_tokens_url": f"{self.api}/app/installations/{installation.id}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{WEB}/settings/installations/{installation.id}", "app_id": app.id,
            "app_slug": app.slug, "target_id": installation.account.id,
            "target_type": installation.account.type.value, "permissions": dict(installation.permissions),
            "events": ["check_run", "issue_comment", "pull_request", "push"],
            "created_at": installation.created_at, "updated_at": installation.created_at,
            "single_file_name": None, "has_multiple_single_files": False, "single_file_paths": [],
            "suspended_by": None, "suspended_at": None,
        }

    def collaborator_permission(self, repo: Repo, user: User, role: Role) -> dict[str, Any]:
        order = [Role.READ, Role.TRIAGE, Role.WRITE, Role.MAINTAIN, Role.ADMIN]
        rank = order.index(role) if role in order else -1
        flags = {"pull": rank >= 0, "triage": rank >= 1, "push": rank >= 2, "maintain": rank >= 3,
                 "admin": rank >= 4}
        return {"permission": role.legacy_permission, "role_name": role.value,
                "user": {**self.user(user), "permissions": flags, "role_name": role.value}}

    def association(self, repo: Repo, user: User) -> str:
        """GitHub's author_association of `user` on `repo`."""
        if user.login == repo.owner.login:
            return "OWNER"
        if repo.roles.get(user.login, Role.NONE) not in (Role.NONE, Role.READ):
            return "COLLABORATOR"
        return "NONE"
