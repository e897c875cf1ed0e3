"""Building the running bot from its settings: adapters behind the ports, the bus, the app.

This is the one place that chooses concrete implementations: the embedded defaults (SQLite,
in-process bus, git checkouts, local builder, kfp.local) and, with GitHub credentials, the
PyGithub reporter. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.budget import memory_budget
from bot.config import BuilderKind, BusKind, RunnerKind, Settings
from bot.services import Services
from bot.slack_chat import chat_from_settings
from handlers.context import HandlerContext, Policy
from handlers.models import PullRequestRef, RepoRef
from handlers.ports import Runner, Store
from pipeline_registry.cache import PARSES_DIR, use_disk_cache
from pipeline_registry.repo_config import Target

if TYPE_CHECKING:
    from bot.github import GitHubClients

log = logging.getLogger("kfp_bot")


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


def build_services(settings: Settings, *, github_clients: GitHubClients | None = None) -> Services:
    """Every adapter for `settings`, wired into a handler context and a bus (not started).

    `github_clients` replaces the clients built from the settings (tests use fast retries).
    """
    from bot.redaction import RedactingChat, RedactingReporter, redactor_for
    from bot.sandboxing import service_sandbox
    from bot.store import SqlStore
    from deploy.checkout import GitSource

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    use_disk_cache(settings.cache_dir / PARSES_DIR)  # parses shared with `kfp-bot plan` on this machine
    sandbox = service_sandbox(settings)
    redactor = redactor_for(settings)
    store = SqlStore(settings.resolved_database_url, redact=redactor)
    reporter, permissions, pulls, clients = _github_side(settings, store, github_clients)
    # Text leaves through the reporter and the chat: secrets are masked there (and in the store).
    reporter = RedactingReporter(reporter, redactor)
    holder: dict[str, HandlerContext] = {}
    bus = _bus(settings, store, holder)
    builder = _builder(settings)
    runner, runner_decoders = _runner(settings, sandbox)
    context = HandlerContext(
        store=store, bus=bus,
        source=GitSource(settings.cache_dir, token_for=clients.token_for if clients else None),
        builder=builder,
        compiler=_compiler(settings, sandbox),
        runner=runner,
        reporter=reporter, permissions=permissions, pulls=pulls,
        work_dir=settings.data_dir / "work",
        policy=Policy(allowed_users=settings.allowed_users, allow_local_repos=settings.allow_local_repos,
                      github_host=settings.github_host, bot_login=settings.bot_login,
                      service_accounts=settings.allowed_service_accounts),
        templates=_templates(settings), schedules=_schedules(settings),
    )
    holder["ctx"] = context
    chat = chat_from_settings(settings)
    context.chat = RedactingChat(chat, redactor) if chat is not None else None
    decoders = tuple(d for d in (builder, *runner_decoders) if hasattr(d, "decode_notification"))
    from bot.github.deliveries import webhook_redeliverer

    return Services(store=store, bus=bus, context=context, decoders=decoders,
                    redeliverer=webhook_redeliverer(settings, clients), redactor=redactor)


def _bus(settings: Settings, store, holder: dict[str, HandlerContext]):
    """The store is the queue: Pub/Sub relays its rows in production; otherwise worker threads
    (a short lane for bookkeeping, a long one for builds, compiles and runs) handle them here."""
    if settings.bus is BusKind.PUBSUB:
        from bot.pubsub import PubSubBus, make_publisher
        from bot.pubsub.relay import OutboxRelay

        publisher = make_publisher(settings.pubsub_endpoint)
        return OutboxRelay(store, PubSubBus.from_settings(settings, publisher),
                           notifications=_notifications_topic(settings, publisher))
    from bot.embedded_bus import OutboxBus
    from bot.store.outbox import Lane
    from handlers.routes import dispatch, handle_failure

    return OutboxBus(store, dispatch=lambda event: dispatch(event, holder["ctx"]),
                     on_error=lambda event, error: handle_failure(event, error, holder["ctx"]),
                     lanes={Lane.SHORT: settings.short_workers, Lane.LONG: settings.workers},
                     lease_seconds=settings.lease_seconds)


def _notifications_topic(settings: Settings, publisher):
    """Where the relay publishes run notifications: KFP_BOT_NOTIFICATIONS_TOPIC (the embedded bus
    hands them to the Slack notifier itself)."""
    from bot.pubsub import PubSubBus, topic_path

    return PubSubBus(publisher, topic_path(settings.gcp_project or "", settings.notifications_topic))


def _builder(settings: Settings):
    """Cloud Build (building from the uploaded context, or a repository connection, and compiling),
    or the local container engine (builds reported skipped without one)."""
    if settings.builder is BuilderKind.CLOUDBUILD:
        from deploy.builders.cloudbuild import CloudBuildBuilder, make_cloudbuild_client
        from deploy.builders.cloudbuild_config import ConnectedRepositorySource
        from deploy.builders.cloudbuild_source import StorageUpload
        from deploy.endpoints import make_gcs_client

        storage = make_gcs_client(settings.gcs_endpoint, settings.gcp_project)
        source = ConnectedRepositorySource(settings.cloudbuild_connection) if settings.cloudbuild_connection else None
        # KFP_BOT_GCP_PROJECT is required with this builder (bot.config refuses to start without it).
        return CloudBuildBuilder(make_cloudbuild_client(settings.cloudbuild_endpoint), settings.gcp_project or "",
                                 service_account=settings.cloudbuild_service_account, source=source,
                                 upload=StorageUpload(storage, settings.cloudbuild_bucket or "",
                                                      settings.cloudbuild_prefix),
                                 compile=_cloud_compile(settings))
    from deploy.builders.local import LocalBuilder
    from deploy.runners.local import container_engine

    return LocalBuilder(container_engine(settings.container_engine.candidates))


def _cloud_compile(settings: Settings):
    """Where Cloud Build's compile step puts its artifacts (production: PR code never runs here)."""
    from deploy.builders.cloudbuild_compile import CloudCompile
    from deploy.endpoints import make_gcs_client

    return CloudCompile(make_gcs_client(settings.gcs_endpoint, settings.gcp_project), settings.cloudbuild_bucket or "",
                        settings.cloudbuild_prefix, settings.cloudbuild_python_image,
                        max_timeout_seconds=settings.compile_max_timeout_seconds)


def _compiler(settings: Settings, sandbox):
    """The `Compiler` port: with Cloud Build, the spec its compile step wrote (the service never
    imports pull-request code); otherwise the sandboxed local compiler."""
    if settings.builder is BuilderKind.CLOUDBUILD:
        from deploy.builders.cloudbuild_compile import CloudBuildCompiler

        return CloudBuildCompiler(_cloud_compile(settings))
    from deploy.pipelines import RepositoryCompiler

    return RepositoryCompiler(settings.cache_dir, sandbox=sandbox,
                              max_timeout_seconds=settings.compile_max_timeout_seconds,
                              max_memory_mb=settings.compile_max_memory_mb)


def _runner(settings: Settings, sandbox):
    """One runner per configured target behind a router; the remote ones also decode events."""
    from deploy.runners.routing import RoutingRunner

    runners: dict[Target, Runner] = {}
    if settings.runner is RunnerKind.LOCAL:
        from deploy.runners.local_runner import LocalRunner

        runners[Target.LOCAL] = LocalRunner(settings.data_dir / "runs",
                                            timeout_seconds=settings.run_timeout_seconds, sandbox=sandbox)
    if settings.gcp_project and settings.pipeline_root:
        from deploy.runners.vertex import VertexRunner, make_pipeline_client

        runners[Target.VERTEX] = VertexRunner(
            make_pipeline_client(settings.gcp_region, settings.vertex_endpoint), settings.gcp_project,
            settings.gcp_region, pipeline_root=settings.pipeline_root,
            service_account=settings.pipeline_service_account)
    if settings.kfp_host:
        from deploy.runners.kfp_endpoint import KfpEndpointRunner

        runners[Target.KFP] = KfpEndpointRunner(settings.kfp_host)
    default = Target(settings.runner.value)
    return RoutingRunner(runners, default=default), tuple(runners.values())


def _templates(settings: Settings):
    """Where deploys upload templates: KFP_BOT_TEMPLATE_STORE, or a folder in the data dir."""
    from deploy.template_stores import make_template_store

    store = make_template_store(settings.template_store, settings.data_dir)
    if not settings.kfp_host:
        return store
    from deploy.kfp_deploy import KfpPipelineStore, TargetRouted

    return TargetRouted({Target.KFP: KfpPipelineStore(settings.kfp_host)}, fallback=store,
                        default_target=Target(settings.runner.value))


def _schedules(settings: Settings):
    """Vertex AI schedules when Vertex AI is configured, KFP recurring runs for `kfp` pipelines when
    KFP_BOT_KFP_HOST is set; otherwise deploys schedule nothing."""
    vertex = _vertex_schedules(settings)
    if not settings.kfp_host:
        return vertex
    from deploy.kfp_deploy import KfpRecurringRuns, TargetRouted

    return TargetRouted({Target.KFP: KfpRecurringRuns(settings.kfp_host)}, fallback=vertex,
                        default_target=Target(settings.runner.value))


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


def serve_forever(settings: Settings, *, host: str, port: int) -> int:
    """`kfp-bot serve`: the app on gunicorn (`bot.server`) until SIGINT/SIGTERM."""
    from bot.logs import configure_logging
    from bot.redaction import redactor_for
    from bot.server import serve

    settings.require_service_settings()
    configure_logging(settings.log_format, settings.log_level, redact=redactor_for(settings))
    log.info(memory_budget(settings))  # before the worker boots: the first thing an operator reads
    return serve(settings, host=host, port=port)


def create_production_app():
    """The WSGI app for gunicorn (`app.yaml`): settings from the environment, bus started."""
    from bot.app import create_app
    from bot.config import load_settings
    from bot.logs import configure_logging
    from bot.redaction import redactor_for

    settings = load_settings()
    settings.require_service_settings()
    configure_logging(settings.log_format, settings.log_level, redact=redactor_for(settings))
    log.info(memory_budget(settings))
    services = build_services(settings)
    services.start()
    resume(settings, services)
    return create_app(settings, services)



def resume(settings: Settings, services: Services) -> None:
    """Pick up what a previous process left. Embedded work needs nothing here: it is in the
    store, and steps whose owner stopped are taken over once their leases expire. Runs on
    remote backends are asked for their state (reconcile), since their events may have been lost."""
    from handlers.reconcile import reconcile

    if settings.runner is RunnerKind.LOCAL:
        log.info("%d event(s) waiting in the store", services.store.pending_work())
        return
    if services.context is None:  # nothing was wired to handle what reconcile finds
        return
    report = reconcile(services.context)
    log.info("reconciled unfinished runs on start: %s", report.to_json())
