"""deploy/gcp/setup.sh against a fake `gcloud` that remembers what exists (tests/deploy/fake_gcloud.py).

The script is run by bash exactly as a platform engineer runs it; the fake records every
invocation and keeps the project's resources in a state file, so a second run sees what the first
created. Assertions read the recorded command lines and the resulting state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "deploy" / "gcp" / "setup.sh"
FAKE = Path(__file__).resolve().parent / "fake_gcloud.py"
PROJECT = "ml-platform-prod"
BOT_URL = "https://ml-platform-prod.uc.r.appspot.com"
SA = f"{PROJECT}.iam.gserviceaccount.com"
PUBSUB_AGENT = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
WEBHOOK_SECRET = "whsec-7d1c0f3e9a5b"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAfakeKeyMaterial0123\n-----END RSA PRIVATE KEY-----\n"
TASKS_TOKEN = "tasks-4b9e2a71c3d5"
CREATES = ("create",)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    commands: list[list[str]]


class Project:
    """A fake project: a PATH with the fake gcloud, its state and its invocation log."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        gcloud = bin_dir / "gcloud"
        gcloud.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I "{FAKE}" "$@"\n')
        gcloud.chmod(0o755)
        self.log = tmp_path / "gcloud.log"
        self.state_file = tmp_path / "state.json"
        self.env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C",
                    "FAKE_GCLOUD_LOG": str(self.log), "FAKE_GCLOUD_STATE": str(self.state_file)}
        self.secrets_dir = tmp_path / "secrets"
        self.secrets_dir.mkdir()
        self.webhook_secret = self.secret_file("webhook-secret.txt", WEBHOOK_SECRET)
        self.private_key = self.secret_file("kfp-bot.private-key.pem", PRIVATE_KEY)
        self.tasks_token = self.secret_file("tasks-token.txt", TASKS_TOKEN)

    def secret_file(self, name: str, value: str) -> Path:
        path = self.secrets_dir / name
        path.write_text(value)
        return path

    def setup(self, *args: str, env: dict[str, str] | None = None) -> Run:
        before = len(self.log.read_text().splitlines()) if self.log.exists() else 0
        done = subprocess.run(["bash", str(SETUP), *args], env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=120, check=False)
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return Run(done.returncode, done.stdout, done.stderr, [json.loads(line) for line in lines[before:]])

    def setup_with_files(self, *args: str) -> Run:
        return self.setup("--project", PROJECT, f"--bot-url={BOT_URL}",
                          f"--webhook-secret-file={self.webhook_secret}",
                          f"--github-private-key-file={self.private_key}", *args)

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def resource(self, key: str) -> dict[str, Any]:
        return self.state["resources"][key]

    def bound(self, resource: str, member: str, role: str) -> bool:
        return [resource, member, role] in self.state.get("bindings", [])


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Run]:
    """One first run with the secrets given as files, shared by the tests that read its outcome."""
    project = Project(tmp_path_factory.mktemp("first-run"))
    return project, project.setup_with_files()


def created(run: Run) -> list[list[str]]:
    """The create commands of a run (gcloud GROUP... create NAME ...)."""
    return [c for c in run.commands if "create" in [w for w in c if not w.startswith("-")]]


def test_a_first_run_creates_everything_the_bot_needs(first_run: tuple[Project, Run]) -> None:
    project, run = first_run

    assert run.code == 0, run.stderr
    resources = project.state["resources"]
    topics = {k.split("/", 1)[1] for k in resources if k.startswith("pubsub topics/")}
    assert topics == {"kfp-bot-events", "kfp-bot-notifications", "kfp-bot-pipeline-events", "kfp-bot-dead-letter",
                      "cloud-builds"}
    for name, topic in (("kfp-bot-events-push", "kfp-bot-events"), ("kfp-bot-cloud-builds-push", "cloud-builds"),
                        ("kfp-bot-pipeline-events-push", "kfp-bot-pipeline-events"),
                        ("kfp-bot-notifications-push", "kfp-bot-notifications")):
        push = project.resource(f"pubsub subscriptions/{name}")
        assert push["topic"] == topic
        assert push["push-endpoint"] == f"{BOT_URL}/pubsub/push"
        assert push["push-auth-service-account"] == f"kfp-bot-push@{SA}"
        assert push["push-auth-token-audience"] == BOT_URL
        assert push["ack-deadline"] == "600"
        assert push["dead-letter-topic"] == "kfp-bot-dead-letter" and push["max-delivery-attempts"] == "10"
        assert push["min-retry-delay"] == "10s" and push["max-retry-delay"] == "600s"
        assert push["expiration-period"] == "never"
        assert project.bound(f"pubsub subscriptions/{name}", PUBSUB_AGENT, "roles/pubsub.subscriber")
    assert project.resource("pubsub subscriptions/kfp-bot-dead-letter-hold")["topic"] == "kfp-bot-dead-letter"
    assert project.bound("pubsub topics/kfp-bot-dead-letter", PUBSUB_AGENT, "roles/pubsub.publisher")

    sink = project.resource("logging sinks/kfp-bot-pipeline-events")
    assert sink["log-filter"] == (f'logName="projects/{PROJECT}/logs/'
                                  'aiplatform.googleapis.com%2Fpipeline_job_events"')
    [sink_command] = [c for c in created(run) if c[:2] == ["logging", "sinks"]]
    assert f"pubsub.googleapis.com/projects/{PROJECT}/topics/kfp-bot-pipeline-events" in sink_command
    assert project.bound("pubsub topics/kfp-bot-pipeline-events", sink["writerIdentity"], "roles/pubsub.publisher")

    job = project.resource("scheduler jobs/kfp-bot-reconcile@us-central1")
    assert job["schedule"] == "*/5 * * * *" and job["http-method"] == "POST"
    assert job["uri"] == f"{BOT_URL}/tasks/reconcile"
    assert job["oidc-service-account-email"] == f"kfp-bot-push@{SA}" and job["oidc-token-audience"] == BOT_URL

    accounts = {k.split("/", 1)[1] for k in resources if k.startswith("iam service-accounts/")}
    assert accounts == {f"kfp-bot@{SA}", f"kfp-bot-push@{SA}", f"kfp-bot-pipelines@{SA}", f"kfp-bot-builds@{SA}"}
    bot = f"serviceAccount:kfp-bot@{SA}"
    for role in ("roles/aiplatform.user", "roles/cloudbuild.builds.editor"):
        assert project.bound(f"projects/{PROJECT}", bot, role)
    assert project.bound(f"iam service-accounts/kfp-bot-pipelines@{SA}", bot, "roles/iam.serviceAccountUser")
    assert project.bound(f"iam service-accounts/kfp-bot-push@{SA}", PUBSUB_AGENT, "roles/iam.serviceAccountTokenCreator")
    assert project.bound("pubsub topics/kfp-bot-events", bot, "roles/pubsub.publisher")
    assert project.bound("artifacts repositories/kfp-bot-images@us-central1", f"serviceAccount:kfp-bot-builds@{SA}",
                         "roles/artifactregistry.writer")
    assert project.bound(f"storage buckets/gs://{PROJECT}-kfp-bot-pipelines",
                         f"serviceAccount:kfp-bot-pipelines@{SA}", "roles/storage.objectAdmin")
    for member in (bot, f"serviceAccount:kfp-bot-builds@{SA}"):  # sources in, compiled pipelines out
        assert project.bound(f"storage buckets/gs://{PROJECT}-kfp-bot-builds", member, "roles/storage.objectAdmin")

    secrets = project.state["secrets"]
    assert secrets["kfp-bot-webhook-secret"] == WEBHOOK_SECRET
    assert secrets["kfp-bot-github-private-key"] == PRIVATE_KEY
    assert len(secrets["kfp-bot-tasks-token"]) == 64  # generated: 32 random bytes, hex
    for name in secrets:
        assert project.bound(f"secrets/{name}", bot, "roles/secretmanager.secretAccessor")
        # builds compile pull-request code: their account reaches no secret
        assert not project.bound(f"secrets/{name}", f"serviceAccount:kfp-bot-builds@{SA}",
                                 "roles/secretmanager.secretAccessor")
    assert f"KFP_BOT_PUBSUB_PUSH_AUDIENCE={BOT_URL}" in run.stderr


def test_a_second_run_creates_nothing(first_run: tuple[Project, Run], project: Project) -> None:
    first_project, first = first_run
    state = first_project.state
    project.state_file.write_text(json.dumps(state))  # the project as the first run left it

    second = project.setup("--project", PROJECT, "--bot-url", BOT_URL)

    assert first.code == 0 and second.code == 0, second.stderr
    assert created(first) and created(second) == []
    assert project.state["resources"] == state["resources"] and project.state["secrets"] == state["secrets"]
    assert "exists: secret kfp-bot-github-private-key (value unchanged)" in second.stderr


def test_secret_values_never_appear_on_a_command_line_or_in_the_output(project: Project) -> None:
    database_url = project.secret_file("database-url.txt", "postgresql+psycopg://kfp-bot:s3cr3t-pw@/kfp-bot?host=/x")
    runs = [project.setup_with_files(f"--tasks-token-file={project.tasks_token}", "--scheduler-auth=token",
                                     f"--database-url-file={database_url}"),
            project.setup_with_files("--scheduler-auth=token")]

    assert [r.code for r in runs] == [0, 0], runs[0].stderr
    assert project.state["secrets"]["kfp-bot-database-url"] == database_url.read_text()
    job = project.resource("scheduler jobs/kfp-bot-reconcile@us-central1")
    assert job["headers"] == f"Authorization=Bearer {TASKS_TOKEN}"  # handed over in a flags file
    assert "oidc-service-account-email" not in job
    values = [WEBHOOK_SECRET, TASKS_TOKEN, "fakeKeyMaterial", "s3cr3t-pw", *project.state["secrets"].values()]
    for run in runs:
        text = json.dumps(run.commands) + run.stdout + run.stderr
        assert not [v for v in values if v.strip() in text]
    assert not list(project.dir.glob("**/scheduler-flags.yaml"))


def test_generated_secrets_stay_out_of_the_output_too(project: Project) -> None:
    run = project.setup("--project", PROJECT, "--bot-url", BOT_URL, "--github-private-key-file", str(project.private_key),
                        "--scheduler-auth", "token")

    assert run.code == 0, run.stderr
    generated = [project.state["secrets"]["kfp-bot-webhook-secret"], project.state["secrets"]["kfp-bot-tasks-token"]]
    assert all(len(value) == 64 for value in generated) and generated[0] != generated[1]
    job = project.resource("scheduler jobs/kfp-bot-reconcile@us-central1")
    assert job["headers"] == f"Authorization=Bearer {generated[1]}"  # read back from Secret Manager
    text = json.dumps(run.commands) + run.stdout + run.stderr
    assert not [v for v in generated if v in text]


def test_a_dry_run_prints_the_commands_and_runs_none(project: Project) -> None:
    run = project.setup("--dry-run", env={"PROJECT": PROJECT, "BOT_URL": BOT_URL,
                                          "GITHUB_PRIVATE_KEY_FILE": str(project.private_key)})

    assert run.code == 0, run.stderr
    assert run.commands == []  # gcloud was never called
    printed = run.stdout.splitlines()
    push = next(line for line in printed if "pubsub subscriptions create kfp-bot-events-push" in line)
    assert "--ack-deadline=600" in push and "--dead-letter-topic=kfp-bot-dead-letter" in push
    assert f"--push-auth-token-audience={BOT_URL}" in push
    assert any("logging sinks create kfp-bot-pipeline-events" in line for line in printed)
    assert any(f"--data-file={project.private_key}" in line for line in printed)
    assert PRIVATE_KEY.splitlines()[1] not in run.stdout


def test_without_the_private_key_the_first_run_stops_before_changing_anything(project: Project) -> None:
    run = project.setup("--project", PROJECT, "--bot-url", BOT_URL)

    assert run.code == 1
    assert "--github-private-key-file" in run.stderr and "Nothing was changed" in run.stderr
    assert created(run) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--bot-url", BOT_URL], "--project (or PROJECT) is required"),
    (["--project", PROJECT], "--bot-url (or BOT_URL) is required"),
    (["--project", PROJECT, "--bot-url", "http://bot.example.com"], "must be an https:// URL"),
    (["--project", PROJECT, "--bot-url", BOT_URL, "--max-delivery-attempts", "3"], "from 5 to 100"),
    (["--project", PROJECT, "--bot-url", BOT_URL, "--scheduler-auth", "basic"], "must be oidc or token"),
    (["--project", PROJECT, "--bot-url", BOT_URL, "--webhook-secret-file", "/nonexistent/secret"],
     "cannot read /nonexistent/secret"),
    (["--project", PROJECT, "--bot-url", BOT_URL, "--colour", "blue"], "unknown option --colour"),
])
def test_bad_arguments_are_refused_with_what_is_wrong(project: Project, args: list[str], message: str) -> None:
    run = project.setup(*args)

    assert run.code == 2
    assert message in run.stderr
    assert run.commands == []


def test_help_lists_the_options() -> None:
    done = subprocess.run(["bash", str(SETUP), "--help"], capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, check=False)

    assert done.returncode == 0
    for option in ("--project", "--bot-url", "--scheduler-auth", "--github-private-key-file", "--dry-run"):
        assert option in done.stdout


# -- deploy/gcp/deploy-appengine.sh ----------------------------------------------------------------

DEPLOY = ROOT / "deploy" / "gcp" / "deploy-appengine.sh"


def appengine_project(project: Project, *, secrets: dict[str, str] | None = None) -> Path:
    """Secrets as setup.sh left them, and a copy of the repository's app.yaml to deploy."""
    project.state_file.write_text(json.dumps({"resources": {}, "secrets": secrets if secrets is not None else {
        "kfp-bot-webhook-secret": WEBHOOK_SECRET, "kfp-bot-github-private-key": PRIVATE_KEY,
        "kfp-bot-tasks-token": TASKS_TOKEN}}))
    app_dir = project.dir / "app"
    app_dir.mkdir()
    (app_dir / "app.yaml").write_text((ROOT / "app.yaml").read_text())
    (app_dir / ".gitignore").write_text(".venv/\n__pycache__/\n")
    return app_dir / "app.yaml"


def deploy(project: Project, *args: str) -> Run:
    before = len(project.log.read_text().splitlines()) if project.log.exists() else 0
    done = subprocess.run(["bash", str(DEPLOY), *args], env=project.env, capture_output=True, text=True,
                          timeout=60, check=False)
    lines = project.log.read_text().splitlines() if project.log.exists() else []
    return Run(done.returncode, done.stdout, done.stderr, [json.loads(line) for line in lines[before:]])


def test_app_engine_gets_the_secrets_in_its_configuration_never_on_a_command_line(project: Project) -> None:
    import yaml

    app_yaml = appengine_project(project)

    run = deploy(project, "--project", PROJECT, "--app-yaml", str(app_yaml), "--version", "v7")

    assert run.code == 0, run.stderr
    [deployed] = project.state["deploys"]
    assert Path(deployed["config"]).parent == app_yaml.parent
    assert not Path(deployed["config"]).exists()  # the generated configuration is gone
    config = yaml.safe_load(deployed["config_text"])
    original = yaml.safe_load(app_yaml.read_text())
    assert config["entrypoint"] == original["entrypoint"]
    assert config["service_account"] == f"kfp-bot@{SA}"
    assert config["env_variables"] == {**original["env_variables"], "KFP_BOT_WEBHOOK_SECRET": WEBHOOK_SECRET,
                                       "KFP_BOT_GITHUB_PRIVATE_KEY": PRIVATE_KEY.rstrip("\n"),
                                       "KFP_BOT_TASKS_TOKEN": TASKS_TOKEN}
    assert ".kfp-bot-deploy.yaml" in deployed["ignore"].splitlines()
    assert ".venv/" in deployed["ignore"].splitlines()
    assert deployed["flags"] == {"version": "v7"}
    text = json.dumps(run.commands) + run.stdout + run.stderr
    assert not [v for v in (WEBHOOK_SECRET, TASKS_TOKEN, "fakeKeyMaterial") if v in text]


def test_a_database_url_secret_is_added_when_it_exists(project: Project) -> None:
    import yaml

    url = "postgresql+psycopg://kfp-bot:pa55-word@/kfp-bot?host=/cloudsql/ml-platform-prod:us-central1:kfp"
    app_yaml = appengine_project(project, secrets={
        "kfp-bot-webhook-secret": WEBHOOK_SECRET, "kfp-bot-github-private-key": PRIVATE_KEY,
        "kfp-bot-tasks-token": TASKS_TOKEN, "kfp-bot-database-url": url})

    run = deploy(project, "--project", PROJECT, "--app-yaml", str(app_yaml))

    assert run.code == 0, run.stderr
    config = yaml.safe_load(project.state["deploys"][0]["config_text"])
    assert config["env_variables"]["KFP_BOT_DATABASE_URL"] == url
    assert "pa55-word" not in json.dumps(run.commands) + run.stdout + run.stderr


def test_app_engine_deploy_without_the_secrets_says_to_run_setup_first(project: Project) -> None:
    app_yaml = appengine_project(project, secrets={})

    run = deploy(project, "--project", PROJECT, "--app-yaml", str(app_yaml))

    assert run.code == 1
    assert "cannot read secret kfp-bot-webhook-secret: run deploy/gcp/setup.sh first" in run.stderr
    assert "deploys" not in project.state
    assert sorted(p.name for p in app_yaml.parent.iterdir()) == [".gitignore", "app.yaml"]


def test_app_engine_dry_run_reads_no_secret(project: Project) -> None:
    app_yaml = appengine_project(project)

    run = deploy(project, "--project", PROJECT, "--app-yaml", str(app_yaml), "--dry-run", "--no-promote")

    assert run.code == 0, run.stderr
    assert run.commands == []
    assert run.stdout.startswith("gcloud app deploy ") and "--no-promote" in run.stdout


def test_the_guide_changes_the_url_of_every_push_subscription_the_setup_creates(
        first_run: tuple[Project, Run]) -> None:
    project, _ = first_run
    pushes = {k.split("/", 1)[1] for k, v in project.state["resources"].items()
              if k.startswith("pubsub subscriptions/") and "push-endpoint" in v}
    guide = (ROOT / "docs" / "deployment.md").read_text()
    steps = guide[guide.index("**Changing the bot's URL**"):]
    steps = steps[:steps.index("\n- **")]

    assert len(pushes) == 4
    for name in pushes:
        assert name in steps, f"docs/deployment.md does not move {name} to the new URL"
    assert "modify-push-config" in steps and "kfp-bot-reconcile" in steps
