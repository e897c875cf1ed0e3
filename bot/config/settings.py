"""Every setting of kfp-bot, from `KFP_BOT_*` environment variables, validated at start-up.

With `bot.config`, the only code that reads the environment (imported on first use: pydantic-settings
costs more than `kfp-bot plan`'s whole start-up). A missing or contradictory setting stops
start-up with a message naming the variable; secrets are `SecretStr` so they never appear in a
log line, a repr or an error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.config.base import (
    ENV_PREFIX,
    BuilderKind,
    BusKind,
    ConfigurationError,
    ContainerEngine,
    LogFormat,
    RunnerKind,
    default_data_dir,
)
from pipeline_registry.limits import RunLimits


class Settings(BaseSettings):
    """Every setting of the bot; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    webhook_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    github_app_id: int | None = None
    github_private_key: SecretStr | None = None
    github_private_key_file: Path | None = None
    github_token: SecretStr | None = None
    # Longest wait for a GitHub rate limit inside one step; beyond it the step is retried later.
    github_max_rate_limit_wait: float = Field(default=60.0, ge=0, le=540)
    bot_login: str | None = None
    database_url: str | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    allowed_users: Annotated[tuple[str, ...], NoDecode] = ()
    allow_local_repos: bool = False
    bus: BusKind = BusKind.INPROCESS
    workers: int = Field(default=2, ge=1, le=64)
    short_workers: int = Field(default=2, ge=1, le=64)
    lease_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"
    public_url: str | None = None
    permission_cache_seconds: float = Field(default=60.0, ge=0)
    max_body_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # A request's headers and body must arrive within this many seconds (slow clients).
    read_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # `kfp-bot serve`: web processes (each with `http_threads` threads for the Flask routes) besides the processing one;
    # None: one on SQLite (a single writer: more processes only queue on its lock), two on PostgreSQL.
    http_workers: int | None = Field(default=None, ge=1, le=32)
    http_threads: int = Field(default=4, ge=1, le=256)
    run_timeout_seconds: float = Field(default=3600.0, gt=0)
    # Local runs' folders and logs are removed this many days after they were last written (0: kept).
    run_files_keep_days: float = Field(default=14.0, ge=0)
    # Ceilings on any repository's `.kfp-bot.yaml` `limits:` (trusted settings; README "Guardrails").
    max_concurrent_runs: int = Field(default=50, ge=1, le=10_000)
    max_concurrent_runs_per_pr: int = Field(default=20, ge=1, le=10_000)
    max_runs_per_day: int = Field(default=2000, ge=0, le=1_000_000)
    max_runs_per_pr_per_day: int = Field(default=500, ge=0, le=1_000_000)
    # Caps on what any repository's `.kfp-bot.yaml` `compile:` may ask for (trusted settings).
    compile_max_timeout_seconds: int = Field(default=900, ge=5)
    compile_max_memory_mb: int = Field(default=8192, ge=256)
    # The memory of the instance the service runs on (App Engine class, Cloud Run limit); every
    # memory cap must stay below it. None: not checked (a laptop).
    instance_memory_mb: int | None = Field(default=None, ge=128)
    # Isolation of repository code (bubblewrap). Allowing it unsandboxed is UNSAFE: the code can then
    # read the bot's secrets and files; only for a single-user laptop running its own repositories.
    allow_unsandboxed: bool = False
    sandbox_max_processes: int = Field(default=512, ge=8, le=65536)
    sandbox_output_kb: int = Field(default=1024, ge=4, le=1024 * 1024)

    # Slack notifications and deploy on merge
    slack_bot_token: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    slack_channel: str | None = None
    slack_deploy_channel: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_notify_states: Annotated[tuple[str, ...], NoDecode] = ("running", "succeeded", "failed", "error",
                                                                  "cancelled")
    deploy_branches: Annotated[tuple[str, ...], NoDecode] = ()
    template_store: str | None = None

    # Google Cloud (production path)
    gcp_project: str | None = None
    gcp_region: str = "us-central1"
    events_topic: str = "kfp-bot-events"
    notifications_topic: str = "kfp-bot-notifications"
    pubsub_endpoint: str | None = None
    pubsub_push_audience: str | None = None
    pubsub_push_service_account: str | None = None
    pubsub_verify_token: bool = True
    # How long a push request waits for its step: well under Pub/Sub's 600 s ack deadline and
    # App Engine's request limit (bot.pubsub.steps).
    pubsub_step_seconds: float = Field(default=60.0, gt=0, le=300)
    oidc_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    builder: BuilderKind = BuilderKind.LOCAL
    container_engine: ContainerEngine = ContainerEngine.AUTO
    cloudbuild_endpoint: str | None = None
    cloudbuild_service_account: str | None = None
    cloudbuild_bucket: str | None = None
    cloudbuild_prefix: str = "kfp-bot"
    cloudbuild_connection: str | None = None
    cloudbuild_python_image: str = "python:3.11-slim"
    gcs_endpoint: str | None = None
    runner: RunnerKind = RunnerKind.LOCAL
    vertex_endpoint: str | None = None
    pipeline_root: str | None = None
    pipeline_service_account: str | None = None
    # Service accounts a `settings.yaml` `run.service_account` may name (default: the one above).
    run_service_accounts: Annotated[tuple[str, ...], NoDecode] = ()
    kfp_host: str | None = None
    tasks_token: SecretStr | None = None

    @property
    def limits_ceiling(self) -> RunLimits:
        """The most any repository's `.kfp-bot.yaml` `limits:` may allow (KFP_BOT_MAX_CONCURRENT_RUNS, ...)."""
        return RunLimits(concurrent_runs=self.max_concurrent_runs, concurrent_runs_per_pr=self.max_concurrent_runs_per_pr,
                         runs_per_day=self.max_runs_per_day, runs_per_pr_per_day=self.max_runs_per_pr_per_day)

    @field_validator("allowed_users", "slack_notify_states", "deploy_branches", "run_service_accounts",
                     mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(u.strip().lstrip("@") for u in value.split(",") if u.strip())
        return value

    @field_validator("github_api_url", "public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("public_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        # Checks, PR comments and Slack link run pages under it: GitHub refuses a details_url
        # that is not http(s), and a bare host would make every link relative.
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be the bot's web address, starting with https:// (e.g. https://kfp-bot.example.com)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.github_app_id is not None and self.github_token is not None:
            raise ValueError("KFP_BOT_GITHUB_APP_ID and KFP_BOT_GITHUB_TOKEN are both set: "
                             "use a GitHub App (app id + private key) or a token, not both")
        has_key = self.github_private_key is not None or self.github_private_key_file is not None
        if self.github_app_id is not None and not has_key:
            raise ValueError("KFP_BOT_GITHUB_APP_ID is set but neither KFP_BOT_GITHUB_PRIVATE_KEY nor "
                             "KFP_BOT_GITHUB_PRIVATE_KEY_FILE is")
        if has_key and self.github_app_id is None:
            raise ValueError("a GitHub App private key is set but KFP_BOT_GITHUB_APP_ID is not")
        if self.github_private_key is not None and self.github_private_key_file is not None:
            raise ValueError("set KFP_BOT_GITHUB_PRIVATE_KEY or KFP_BOT_GITHUB_PRIVATE_KEY_FILE, not both")
        cloud = [name for name, used in (("KFP_BOT_BUS=pubsub", self.bus is BusKind.PUBSUB),
                                          ("KFP_BOT_BUILDER=cloudbuild", self.builder is BuilderKind.CLOUDBUILD),
                                          ("KFP_BOT_RUNNER=vertex", self.runner is RunnerKind.VERTEX)) if used]
        if cloud and not self.gcp_project:
            raise ValueError(f"{', '.join(cloud)} needs KFP_BOT_GCP_PROJECT")
        if self.builder is BuilderKind.CLOUDBUILD and not self.cloudbuild_bucket:
            raise ValueError("KFP_BOT_BUILDER=cloudbuild needs KFP_BOT_CLOUDBUILD_BUCKET: the bucket the build "
                             "contexts are uploaded to and the compiled pipelines come back in")
        if self.instance_memory_mb is not None and self.compile_max_memory_mb >= self.instance_memory_mb:
            raise ValueError(f"KFP_BOT_COMPILE_MAX_MEMORY_MB ({self.compile_max_memory_mb}) must be below "
                             f"KFP_BOT_INSTANCE_MEMORY_MB ({self.instance_memory_mb}): a compile would take the "
                             "service's instance down")
        if self.runner is RunnerKind.VERTEX and not self.pipeline_root:
            raise ValueError("KFP_BOT_RUNNER=vertex needs KFP_BOT_PIPELINE_ROOT (e.g. gs://bucket/pipeline-root)")
        if self.runner is RunnerKind.KFP and not self.kfp_host:
            raise ValueError("KFP_BOT_RUNNER=kfp needs KFP_BOT_KFP_HOST")
        if self.bus is BusKind.PUBSUB and not self.pubsub_verify_token and not self._emulated_pubsub():
            raise ValueError("KFP_BOT_PUBSUB_VERIFY_TOKEN=0 (unsigned pushes accepted) is for a local Pub/Sub "
                             "emulator only: set KFP_BOT_PUBSUB_ENDPOINT (or PUBSUB_EMULATOR_HOST) to its "
                             "loopback address, or verify the push tokens")
        if (self.bus is BusKind.PUBSUB and self.pubsub_verify_token
                and not (self.pubsub_push_audience and self.pubsub_push_service_account)):
            raise ValueError("KFP_BOT_BUS=pubsub verifies push requests: set KFP_BOT_PUBSUB_PUSH_AUDIENCE and "
                             "KFP_BOT_PUBSUB_PUSH_SERVICE_ACCOUNT (or KFP_BOT_PUBSUB_VERIFY_TOKEN=0 for an "
                             "emulator)")
        return self

    def _emulated_pubsub(self) -> bool:
        """Pub/Sub is an emulator on this machine (a loopback KFP_BOT_PUBSUB_ENDPOINT or PUBSUB_EMULATOR_HOST)."""
        import os

        from deploy.endpoints import is_loopback

        endpoint = self.pubsub_endpoint or os.environ.get("PUBSUB_EMULATOR_HOST")
        return endpoint is not None and endpoint != "" and is_loopback(endpoint)

    @property
    def github_mode(self) -> str | None:
        """'app', 'token' or None (embedded: reports go to the store, page and log)."""
        if self.github_app_id is not None:
            return "app"
        if self.github_token is not None:
            return "token"
        return None

    @property
    def github_host(self) -> str:
        """The host clone URLs must point at: github.com, or the GitHub Enterprise host."""
        host = urlparse(self.github_api_url).hostname or "github.com"
        return "github.com" if host == "api.github.com" else host

    @property
    def allowed_service_accounts(self) -> tuple[str, ...]:
        """What `run.service_account` may name: KFP_BOT_RUN_SERVICE_ACCOUNTS, else the pipeline one."""
        if self.run_service_accounts:
            return self.run_service_accounts
        return (self.pipeline_service_account,) if self.pipeline_service_account else ()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'kfp-bot.db'}"

    @property
    def cache_dir(self) -> Path:
        """Checkouts and compile environments."""
        return self.data_dir / "cache"

    @property
    def runs_dir(self) -> Path:
        """Local (kfp.local) runs: one folder per run, and its log beside it (read by the run's page)."""
        return self.data_dir / "runs"

    def private_key_pem(self) -> str | None:
        """The GitHub App private key, read from the variable or the file."""
        if self.github_private_key is not None:
            return self.github_private_key.get_secret_value()
        if self.github_private_key_file is not None:
            try:
                return self.github_private_key_file.read_text()
            except OSError as exc:
                raise ConfigurationError(
                    f"KFP_BOT_GITHUB_PRIVATE_KEY_FILE: cannot read {self.github_private_key_file}: "
                    f"{exc.strerror}") from None
        return None

    def require_service_settings(self) -> None:
        """Checks that only matter when serving webhooks."""
        if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
            raise ConfigurationError("KFP_BOT_WEBHOOK_SECRET is not set: the webhook secret configured "
                                     "on the GitHub App (or repository webhook) is required to serve")
        if self.github_mode == "app":
            self.private_key_pem()


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (plus explicit overrides), or a `ConfigurationError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in error["loc"]).upper() if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if name else message)
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
