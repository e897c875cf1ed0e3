"""Trusted settings of a pull request's runs come from the default branch, never from the PR.

`review` reads the default branch's head next to a pull request's head: the configuration the
PR's runs use (its own, with every trusted key from the default branch) and the trusted keys
the PR changes, which get a neutral check and a line in the PR comment saying the change takes
effect after merge. `run_settings` answers the same for one run when it is compiled and
submitted, and refuses a service account the bot's settings do not allow. Which keys are
trusted is `pipeline_registry.trusted`'s table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from handlers.clone_urls import check_clone_url
from handlers.context import HandlerContext, Policy
from handlers.messages.checks import trusted_settings_notice
from handlers.models import RepoRef
from handlers.run_models import Run, Trigger
from handlers.status_reporting import safely
from kfp_bot_errors import KfpBotError
from pipeline_registry.errors import ConfigError
from pipeline_registry.repo_config import RepoConfig
from pipeline_registry.repository import Repository
from pipeline_registry.settings import RunOptions
from pipeline_registry.trusted import (
    TrustedChange,
    config_changes,
    run_option_changes,
    trusted_config,
    trusted_run_options,
)


class ServiceAccountRefused(KfpBotError):
    """A `run.service_account` that is not in the bot's allowlist."""


class TrustedSettingsUnavailable(KfpBotError):
    """The default branch, where trusted settings live, could not be read."""


@dataclass(frozen=True)
class TrustedView:
    """What a pull request's head runs with, and the trusted keys it changes."""

    config: RepoConfig
    changes: tuple[TrustedChange, ...]
    branch: str


def default_branch(ctx: HandlerContext, repo: RepoRef) -> Repository:
    """The repository at the head of its default branch (fetched from the base repository's URL,
    never a fork's)."""
    check_clone_url(repo.clone_url, ctx.policy)
    try:
        sha = ctx.source.branch_head(repo, repo.clone_url, repo.default_branch)
        return Repository.open(ctx.source.checkout(repo, repo.clone_url, sha))
    except KfpBotError as exc:
        raise TrustedSettingsUnavailable(f"cannot read trusted settings from the default branch "
                                         f"'{repo.default_branch}': {exc}") from None


def review(ctx: HandlerContext, repo: RepoRef, head_dir: Path, pipelines: Iterable[str]) -> TrustedView:
    """The configuration a PR head runs with and the trusted keys it changes (in `.kfp-bot.yaml`
    and in the `settings.yaml` of `pipelines`)."""
    trusted = default_branch(ctx, repo)
    head = Repository.open(head_dir)
    changes = config_changes(head.config, trusted.config)
    for name in pipelines:
        try:
            mine = head.settings(name)
        except KfpBotError:
            continue  # a broken settings.yaml fails the run itself, with the file and line
        changes += run_option_changes(mine.file, mine.run, _trusted_options(trusted, name))
    return TrustedView(trusted_config(head.config, trusted.config), tuple(changes), repo.default_branch)


def show_changes(ctx: HandlerContext, repo: RepoRef, sha: str, view: TrustedView,
                 installation_id: int | None) -> None:
    """The neutral `kfp-bot / trusted settings` check on `sha`, when the head changes any."""
    if not view.changes:
        return
    changes = [c.to_json() for c in view.changes]
    safely(ctx, f"{repo.full_name}@{sha[:12]}", "trusted settings check", lambda: ctx.reporter.notice(
        trusted_settings_notice(repo, sha, installation_id, changes, view.branch, ctx.policy.service_accounts)))


def run_settings(ctx: HandlerContext, run: Run, repository: Repository) -> tuple[RunOptions, RepoConfig]:
    """The run options and configuration one run uses: a PR run's trusted keys come from the
    default branch; a deploy runs the default branch itself. Raises `ServiceAccountRefused` for a
    service account the bot does not allow."""
    own = repository.settings(run.pipeline)
    if run.trigger is Trigger.DEPLOY or run.pr is None:
        options, config = own.run, repository.config
    else:
        stored = ctx.store.get_pull(run.repo, run.pr)
        if stored is None:
            raise TrustedSettingsUnavailable(f"pull request #{run.pr} of {run.repo} is not known, so its "
                                             "default branch cannot be read")
        trusted = default_branch(ctx, stored.repo)
        options = trusted_run_options(own.run, _trusted_options(trusted, run.pipeline))
        config = trusted_config(repository.config, trusted.config)
    check_service_account(options, ctx.policy, own.file)
    return options, config


def check_service_account(options: RunOptions, policy: Policy, file: str) -> None:
    """Refuse a `run.service_account` outside KFP_BOT_RUN_SERVICE_ACCOUNTS, naming the allowed ones."""
    account = options.service_account
    if account is None or account in policy.service_accounts:
        return
    allowed = ", ".join(policy.service_accounts) or "none is configured"
    raise ServiceAccountRefused(f"{file}: run.service_account '{account}' is not allowed "
                                f"(allowed: {allowed})",
                                hint="an operator adds it to KFP_BOT_RUN_SERVICE_ACCOUNTS")


def _trusted_options(trusted: Repository, pipeline: str) -> RunOptions:
    """The default branch's run options for `pipeline` (none for a pipeline it does not have yet,
    or whose settings there do not parse: the bot's defaults apply)."""
    if pipeline not in trusted.pipelines():
        return RunOptions()
    try:
        return trusted.settings(pipeline).run
    except ConfigError:
        return RunOptions()
