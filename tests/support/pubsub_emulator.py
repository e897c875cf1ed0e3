"""Google's own Pub/Sub emulator, started for the tests, with the topics and push subscriptions of
`deploy/gcp/setup.sh`.

`find_emulator` finds the `cloud-pubsub-emulator` launcher that the Cloud SDK installs (under
`<sdk root>/platform/pubsub-emulator/bin`) and Java, or says what is missing, so that the tier is
skipped with that reason. `PubSubEmulator` runs it on a free port of 127.0.0.1 and stops it.

`setup_resources` reads what the setup script would create (its `--dry-run` output, parsed, so
the names, topics, dead-letter topic and delivery attempts are the script's own) and creates it in
the emulator with the real admin clients, changing only what a test must: the push endpoint (the
bot on 127.0.0.1 instead of `https://BOT_URL`), no OIDC (the emulator signs no tokens), and a
short ack deadline and retry backoff so that redeliveries come in seconds, not minutes.

What the emulator (cloud-pubsub-emulator 0.8.x) was seen to do, which the tests rely on: it pushes
each message in the standard wrapped envelope without an Authorization header; it pushes again
after a non-2xx answer or a cut connection within about 1-3 s (whatever the retry policy says);
it pushes again when a request is still unanswered at the ack deadline, while that request goes
on; its message ids are one counter for all topics and projects; and it puts no
`deliveryAttempt` in the envelope, even with a dead-letter policy.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support.botprocess import free_port

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "deploy" / "gcp" / "setup.sh"
LAUNCHER = Path("platform") / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
START_TIMEOUT_SECONDS = 120.0
# Pub/Sub's smallest ack deadline (ackDeadlineSeconds: "The minimum custom deadline you can specify
# is 10 seconds", https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions).
MIN_ACK_DEADLINE_SECONDS = 10


def find_emulator() -> tuple[list[str] | None, str]:
    """The command that starts the emulator, or None and why it cannot run here."""
    if shutil.which("java") is None:
        return None, "Java is not installed (the Pub/Sub emulator needs it)"
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None, "the Cloud SDK (gcloud) is not installed, so neither is its Pub/Sub emulator"
    roots = [Path(gcloud).resolve().parent.parent]
    if not (roots[0] / LAUNCHER).exists():
        asked = subprocess.run([gcloud, "info", "--format=value(installation.sdk_root)"], capture_output=True,
                               text=True, timeout=60, check=False)
        if asked.returncode == 0 and asked.stdout.strip():
            roots.append(Path(asked.stdout.strip()))
    for root in roots:
        if (root / LAUNCHER).exists():
            return [str(root / LAUNCHER)], ""
    return None, (f"the Pub/Sub emulator is not installed in the Cloud SDK at {roots[-1]} "
                  "(`gcloud components install pubsub-emulator`, or the google-cloud-cli-pubsub-emulator package)")


class PubSubEmulator:
    """The emulator as a child process (its own process group) listening on 127.0.0.1:`port`."""

    def __init__(self, command: list[str], work_dir: Path) -> None:
        self.command = command
        self.work_dir = work_dir
        self.log_path = work_dir / "emulator.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """`127.0.0.1:<port>`: KFP_BOT_PUBSUB_ENDPOINT, or PUBSUB_EMULATOR_HOST."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait until it answers; raises RuntimeError with its log when it does not."""
        self.port = free_port()
        env = {**os.environ, "JAVA_TOOL_OPTIONS": "-Xmx256m"}
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen([*self.command, "--host=127.0.0.1", f"--port={self.port}"],
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=self.work_dir, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the Pub/Sub emulator exited with {self._process.returncode}:\n{self.log()}")
            try:
                if requests.get(f"http://{self.endpoint}/", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"the Pub/Sub emulator did not answer within {START_TIMEOUT_SECONDS:g} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the emulator and everything it started (TERM, then KILL)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def log(self) -> str:
        """The end of the emulator's output."""
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def publisher(self) -> Any:
        """A PublisherClient on the emulator (insecure channel, no credentials), as the bot makes it."""
        from bot.pubsub.publisher import make_publisher

        return make_publisher(self.endpoint)

    def subscriber(self) -> Any:
        """A SubscriberClient on the emulator."""
        import grpc
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import pubsub_v1
        from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

        transport = SubscriberGrpcTransport(channel=grpc.insecure_channel(self.endpoint),
                                            credentials=AnonymousCredentials())
        return pubsub_v1.SubscriberClient(transport=transport)


@dataclass(frozen=True)
class PlannedSubscription:
    """One `gcloud pubsub subscriptions create` of the setup script, its flags as given."""

    name: str
    flags: dict[str, str]

    @property
    def push(self) -> bool:
        return "push-endpoint" in self.flags


@dataclass(frozen=True)
class SetupPlan:
    """The Pub/Sub resources `deploy/gcp/setup.sh` creates, read from its dry run."""

    topics: tuple[str, ...]
    subscriptions: tuple[PlannedSubscription, ...]

    def subscription(self, name: str) -> PlannedSubscription:
        return next(s for s in self.subscriptions if s.name == name)


def setup_plan(project: str, prefix: str = "kfp-bot") -> SetupPlan:
    """What the setup script would create in `project` (no gcloud is called in a dry run)."""
    done = subprocess.run(["bash", str(SETUP), "--project", project, "--bot-url", "https://bot.invalid",
                           "--prefix", prefix, "--dry-run"], capture_output=True, text=True, timeout=60,
                          check=True, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
    topics: list[str] = []
    subscriptions: list[PlannedSubscription] = []
    for line in done.stdout.splitlines():
        words = shlex.split(line)
        if words[:4] == ["gcloud", "pubsub", "topics", "create"]:
            topics.append(words[4])
        elif words[:4] == ["gcloud", "pubsub", "subscriptions", "create"]:
            flags = dict(word[2:].split("=", 1) for word in words[5:] if word.startswith("--") and "=" in word)
            subscriptions.append(PlannedSubscription(words[4], flags))
    return SetupPlan(tuple(topics), tuple(subscriptions))


@dataclass
class Resources:
    """What `setup_resources` created: full paths by short name."""

    project: str
    topics: dict[str, str] = field(default_factory=dict)
    subscriptions: dict[str, str] = field(default_factory=dict)
    push_subscriptions: tuple[str, ...] = ()

    def topic(self, name: str) -> str:
        return self.topics[name]


def setup_resources(emulator: PubSubEmulator, project: str, push_url: str, *,
                    ack_deadline_seconds: int = MIN_ACK_DEADLINE_SECONDS, max_retry_seconds: float = 1.0) -> Resources:
    """Create the setup script's topics and subscriptions in `project` on the emulator, pushing to `push_url`."""
    from google.protobuf import duration_pb2
    from google.pubsub_v1 import types

    plan = setup_plan(project)
    publisher, subscriber = emulator.publisher(), emulator.subscriber()
    made = Resources(project)
    for topic in plan.topics:
        made.topics[topic] = publisher.create_topic(name=f"projects/{project}/topics/{topic}").name
    pushes = []
    for planned in plan.subscriptions:
        flags = planned.flags
        request: dict[str, Any] = {"name": f"projects/{project}/subscriptions/{planned.name}",
                                   "topic": made.topics[flags["topic"]]}
        if planned.push:
            # As the script, minus OIDC (push-auth-*): the emulator does not sign tokens.
            request["push_config"] = types.PushConfig(push_endpoint=push_url)
            request["ack_deadline_seconds"] = min(int(flags["ack-deadline"]), ack_deadline_seconds)
            pushes.append(planned.name)
        if "dead-letter-topic" in flags:
            request["dead_letter_policy"] = types.DeadLetterPolicy(
                dead_letter_topic=made.topics[flags["dead-letter-topic"]],
                max_delivery_attempts=int(flags["max-delivery-attempts"]))
        if "min-retry-delay" in flags:
            request["retry_policy"] = types.RetryPolicy(
                minimum_backoff=duration_pb2.Duration(seconds=0),
                maximum_backoff=duration_pb2.Duration(seconds=int(max_retry_seconds),
                                                      nanos=int(max_retry_seconds % 1 * 1e9)))
        made.subscriptions[planned.name] = subscriber.create_subscription(request=request).name
    made.push_subscriptions = tuple(pushes)
    publisher.transport.close()
    subscriber.close()
    return made
