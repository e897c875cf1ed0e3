"""The composition root: the running bot's services, and the command line's, from the settings.

This is the one place that chooses concrete implementations: the embedded defaults (SQLite,
in-process bus, git checkouts, local builder, kfp.local) and, with GitHub credentials, the
PyGithub reporter; Cloud Build, Vertex AI, a KFP endpoint and Pub/Sub when configured. The
command line (`kfp-bot check`, `compile`, `run`) takes its compiler from here too. Starting,
serving and start-up recovery are `bot.startup`'s; nothing here runs at import time, and
adapters are imported when chosen (the command line starts fast).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.config import BuilderKind, BusKind, RunnerKind, Settings
from bot.sandboxing import local_compiler
from bot.services import ManagedBus, Services
from handlers.context import HandlerContext, Policy
from handlers.models import Event, PullRequestRef, RepoRef
from handlers.ports.build import Builder, PipelineDiffs
from handlers.ports.events import NotificationDecoder
from handlers.ports.run import Runner
from handlers.ports.store import Store
from handlers.reports import RunPages
from handlers.targets import ByTarget
from pipeline_registry.cache_control import PARSES_DIR, use_disk_cache
from pipeline_registry.repo_config import Target

if TYPE_CHECKING:
    from bot.github import GitHubClients
    from bot.store import SqlStore
    from deploy.sandbox import Sandbox


# Why a check has no pipeline diff when Cloud Build builds from a repository connection (its
# source is the head's commit only, so the build cannot compile the merge base).
CLOUD_BUILD_NO_DIFF = ("No pipeline diff: Cloud Build builds from the repository connection (the head's commit "
                       "only) and the service never compiles repository code itself; "
                       "`kfp-bot diff NAME --repo . --base <base>` shows it on a laptop.")


class StoredPulls:
    """`PullRequests` without GitHub credentials: the last `pull_request` event stored."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get_pull(self, repo: RepoRef, number: int, installation_id: int | None) -> PullRequestRef | None:
        stored = self.store.get_pull(repo.full_name, number)
        return stored.pull if stored else None


class AllowListPermissions:
    """`Permissions` without GitHub credentials: nobody beyond KFP_BOT_ALLOWED_USERS."""

    def can_write(self, repo: RepoRef, user: str, installation_id: int | None) -> bool:
        return False


def build_services(settings: Settings, *, github_clients: GitHubClients | None = None,
                   override: Callable[[HandlerContext], HandlerContext] | None = None) -> Services:
    """Every adapter for `settings`, wired into one handler context and a bus (not started).

    Read top to bottom: the store, the GitHub side, the backends, the bus, then the context that
    holds them all, built once and frozen. `github_clients` replaces the clients built from the
    settings (tests use fast retries); `override` returns the context with some ports replaced
    (a test's Vertex AI schedules, a benchmark's runner) before anything uses it.
    """
    from bot.github.deliveries import webhook_redeliverer
    from bot.redaction import RedactingChat, RedactingReporter, redactor_for
    from bot.sandboxing import service_sandbox
    from bot.slack_chat import chat_from_settings
    from bot.store import SqlStore
    from deploy.checkout import GitSource
    from handlers.routes import dispatch, handle_failure

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    use_disk_cache(settings.cache_dir / PARSES_DIR)  # parses shared with `kfp-bot plan` on this machine
    sandbox = service_sandbox(settings)
    redactor = redactor_for(settings)
    store = SqlStore(settings.resolved_database_url, redact=redactor)
    reporter, permissions, pulls, clients = _github_side(settings, store, github_clients)
    builder, builder_decoders = _builder(settings)
    runner, runner_decoders = _runner(settings, sandbox)
    chat = chat_from_settings(settings)

    # The bus's workers hand events to the handlers with the context, and the context publishes
    # on the bus: the workers look `context` up when an event arrives, which is only after
    # `Services.start`, long after the assignment below.
    def handle(event: Event) -> None:
        dispatch(event, context)

    def fail(event: Event, error: BaseException) -> None:
        handle_failure(event, error, context)

    bus = _bus(settings, store, handle, fail)
    context = HandlerContext(
        store=store, bus=bus,
        source=GitSource(settings.cache_dir, token_for=clients.token_for if clients else None),
        builder=builder, compiler=_compiler(settings, sandbox), runner=runner,
        diffs=_diffs(settings, sandbox),
        # Text leaves through the reporter and the chat: secrets are masked there (and in the store).
        reporter=RedactingReporter(reporter, redactor), permissions=permissions, pulls=pulls,
        work_dir=settings.data_dir / "work",
        policy=Policy(allowed_users=settings.allowed_users, allow_local_repos=settings.allow_local_repos,
                      github_host=settings.github_host, bot_login=settings.bot_login,
                      service_accounts=settings.allowed_service_accounts,
                      limits_ceiling=settings.limits_ceiling),
        chat=RedactingChat(chat, redactor) if chat is not None else None,
        templates=_templates(settings), schedules=_schedules(settings),
        pages=RunPages(settings.public_url),
    )
    if override is not None:
        context = override(context)
    return Services(store=store, bus=bus, context=context, decoders=(*builder_decoders, *runner_decoders),
                    redeliverer=webhook_redeliverer(settings, clients), redactor=redactor)


def _bus(settings: Settings, store: SqlStore, handle: Callable[[Event], None],
         fail: Callable[[Event, BaseException], None]) -> ManagedBus:
    """The store is the queue: Pub/Sub relays its rows in production (the push endpoint hands
    them to the handlers); otherwise worker threads (a short lane for bookkeeping, a long one
    for builds, compiles and runs) call `handle` here."""
    if settings.bus is BusKind.PUBSUB:
        from bot.pubsub import PubSubBus, make_publisher
        from bot.pubsub.relay import OutboxRelay

        publisher = make_publisher(settings.pubsub_endpoint)
        return OutboxRelay(store, PubSubBus.from_settings(settings, publisher),
                           notifications=_notifications_topic(settings, publisher))
    from bot.embedded_bus import OutboxBus
    from bot.store.outbox_lanes import Lane

    return OutboxBus(store, dispatch=handle, on_error=fail,
                     lanes={Lane.SHORT: settings.short_workers, Lane.LONG: settings.workers},
                     lease_seconds=settings.lease_seconds)


def _notifications_topic(settings: Settings, publisher):
    """Where the relay publishes run notifications: KFP_BOT_NOTIFICATIONS_TOPIC (the embedded bus
    hands them to the Slack notifier itself)."""
    from bot.pubsub import PubSubBus, topic_path

    return PubSubBus(publisher, topic_path(settings.gcp_project or "", settings.notifications_topic))


def _builder(settings: Settings) -> tuple[Builder, tuple[NotificationDecoder, ...]]:
    """Cloud Build (building from the uploaded context, or a repository connection, and compiling),
    or the local container engine (builds reported skipped without one); and the decoders of its
    Pub/Sub notifications."""
    if settings.builder is BuilderKind.CLOUDBUILD:
        from deploy.builders.cloudbuild import CloudBuildBuilder, make_cloudbuild_client
        from deploy.builders.cloudbuild_config import ConnectedRepositorySource
        from deploy.builders.cloudbuild_source import StorageUpload
        from deploy.google_clients import make_gcs_client

        storage = make_gcs_client(settings.gcs_endpoint, settings.gcp_project)
        source = ConnectedRepositorySource(settings.cloudbuild_connection) if settings.cloudbuild_connection else None
        # KFP_BOT_GCP_PROJECT is required with this builder (bot.config refuses to start without it).
        cloud_build = CloudBuildBuilder(make_cloudbuild_client(settings.cloudbuild_endpoint), settings.gcp_project or "",
                                 service_account=settings.cloudbuild_service_account, source=source,
                                 upload=StorageUpload(storage, settings.cloudbuild_bucket or "",
                                                      settings.cloudbuild_prefix),
                                 compile=_cloud_compile(settings))
        return cloud_build, (cloud_build,)  # it also decodes Cloud Build's Pub/Sub notifications
    from deploy.builders.local import LocalBuilder
    from deploy.runners.local import container_engine

    return LocalBuilder(container_engine(settings.container_engine.candidates)), ()


def _cloud_compile(settings: Settings):
    """Where Cloud Build's compile step puts its artifacts (production: PR code never runs here)."""
    from deploy.builders.cloudbuild_compile import CloudCompile
    from deploy.google_clients import make_gcs_client

    return CloudCompile(make_gcs_client(settings.gcs_endpoint, settings.gcp_project), settings.cloudbuild_bucket or "",
                        settings.cloudbuild_prefix, settings.cloudbuild_python_image,
                        max_timeout_seconds=settings.compile_max_timeout_seconds)


def _compiler(settings: Settings, sandbox):
    """The `Compiler` port: with Cloud Build, the spec its compile step wrote (the service never
    imports pull-request code); otherwise the sandboxed local compiler."""
    if settings.builder is BuilderKind.CLOUDBUILD:
        from deploy.builders.cloudbuild_compile import CloudBuildCompiler

        return CloudBuildCompiler(_cloud_compile(settings))
    return local_compiler(settings, sandbox)


def _diffs(settings: Settings, sandbox: Sandbox) -> PipelineDiffs:
    """The `PipelineDiffs` port: the base compiled by the sandboxed local compiler (cached by tree
    in the cache dir); with Cloud Build, the base compiled by the run's own build (the service
    never compiles repository code), except from a repository connection, whose build has only
    the head's files: there, a plain statement that there is no diff."""
    if settings.builder is BuilderKind.CLOUDBUILD and settings.cloudbuild_connection:
        from deploy.pipeline_diffs import UnavailableDiffs

        return UnavailableDiffs(CLOUD_BUILD_NO_DIFF)
    if settings.builder is BuilderKind.CLOUDBUILD:
        from deploy.builders.cloudbuild_diffs import CloudBuildDiffs

        return CloudBuildDiffs(_cloud_compile(settings))
    from deploy.pipeline_diffs import PipelineDiffer

    return PipelineDiffer(local_compiler(settings, sandbox), settings.cache_dir)


def _runner(settings: Settings, sandbox: Sandbox) -> tuple[Runner, tuple[NotificationDecoder, ...]]:
    """One runner per configured target behind a router; and the decoders of the events of the
    remote ones (Vertex AI's pipeline-job notifications)."""
    from deploy.runners.routing import RoutingRunner

    runners: dict[Target, Runner] = {}
    decoders: list[NotificationDecoder] = []
    if settings.runner is RunnerKind.LOCAL:
        from deploy.runners.local_retention import RunFilesRetention
        from deploy.runners.local_runner import LocalRunner

        keep = timedelta(days=settings.run_files_keep_days) if settings.run_files_keep_days else None
        runners[Target.LOCAL] = LocalRunner(settings.runs_dir,
                                            timeout_seconds=settings.run_timeout_seconds, sandbox=sandbox,
                                            retention=RunFilesRetention(settings.runs_dir, keep))
    if settings.gcp_project and settings.pipeline_root:
        from deploy.runners.vertex import VertexRunner, make_pipeline_client

        vertex = VertexRunner(
            make_pipeline_client(settings.gcp_region, settings.vertex_endpoint), settings.gcp_project,
            settings.gcp_region, pipeline_root=settings.pipeline_root,
            service_account=settings.pipeline_service_account)
        runners[Target.VERTEX] = vertex
        decoders.append(vertex)
    if settings.kfp_host:
        from deploy.runners.kfp_endpoint import KfpEndpointRunner

        runners[Target.KFP] = KfpEndpointRunner(settings.kfp_host)
    return RoutingRunner(ByTarget(runners, default=Target(settings.runner.value))), tuple(decoders)


def _templates(settings: Settings):
    """Where deploys upload templates: KFP_BOT_TEMPLATE_STORE, or a folder in the data dir."""
    from deploy.template_stores import make_template_store

    store = make_template_store(settings.template_store, settings.data_dir)
    default = Target(settings.runner.value)
    if not settings.kfp_host:
        return ByTarget.only(store, default=default)
    from deploy.kfp_deploy.pipeline_store import KfpPipelineStore

    return ByTarget({Target.KFP: KfpPipelineStore(settings.kfp_host)}, default=default, fallback=store)


def _schedules(settings: Settings):
    """Vertex AI schedules when Vertex AI is configured, KFP recurring runs for `kfp` pipelines when
    KFP_BOT_KFP_HOST is set; otherwise deploys schedule nothing."""
    vertex = _vertex_schedules(settings)
    default = Target(settings.runner.value)
    if not settings.kfp_host:
        return ByTarget.only(vertex, default=default)
    from deploy.kfp_deploy.recurring_runs import KfpRecurringRuns

    return ByTarget({Target.KFP: KfpRecurringRuns(settings.kfp_host)}, default=default, fallback=vertex)


def _vertex_schedules(settings: Settings):
    if not (settings.gcp_project and settings.pipeline_root):
        return None
    from deploy.schedules import VertexSchedules, make_schedule_client

    return VertexSchedules(make_schedule_client(settings.gcp_region, settings.vertex_endpoint),
                           settings.gcp_project, settings.gcp_region, pipeline_root=settings.pipeline_root,
                           service_account=settings.pipeline_service_account)


def _github_side(settings: Settings, store: Store, clients: GitHubClients | None):
    if settings.github_mode is None:
        from bot.log_reporter import LogReporter

        return LogReporter(), AllowListPermissions(), StoredPulls(store), None
    from bot.github import GitHubClients, GitHubPermissions, GitHubPulls, GitHubReporter

    clients = clients or GitHubClients(settings)
    reporter = GitHubReporter(clients, store, bot_login=settings.bot_login)
    permissions = GitHubPermissions(clients, ttl_seconds=settings.permission_cache_seconds)
    return reporter, permissions, GitHubPulls(clients), clients
