#!/usr/bin/env bash
# Creates what kfp-bot needs in a Google Cloud project, idempotently: every resource is looked up
# first and created only when missing, IAM bindings are (re)asserted, secrets are created once.
# Run it again after a change: nothing that exists is re-created. See docs/deployment.md.
#
#   deploy/gcp/setup.sh --project my-proj --bot-url https://my-proj.uc.r.appspot.com \
#       --webhook-secret-file webhook-secret.txt --github-private-key-file kfp-bot.private-key.pem
#
# Secret values are read from the files given (or generated) and handed to gcloud as files or
# on stdin: they never appear on a command line, in the output, or in a log.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/gcp/setup.sh --project ID --bot-url https://HOST [options]

Every option can also be given as an environment variable (in brackets).

required:
  --project ID                    Google Cloud project [PROJECT]
  --bot-url URL                   the bot's public https base URL, no trailing slash [BOT_URL]

optional:
  --region REGION                 region of Vertex AI, Cloud Scheduler, Artifact Registry, the bucket
                                  [REGION, default us-central1]
  --prefix NAME                   prefix of every resource name [PREFIX, default kfp-bot]
  --oidc-audience AUD             audience of the push and scheduler OIDC tokens
                                  [OIDC_AUDIENCE, default the bot URL]; set KFP_BOT_PUBSUB_PUSH_AUDIENCE to it
  --pipeline-bucket NAME          bucket of the pipeline root [PIPELINE_BUCKET, default PROJECT-PREFIX-pipelines]
  --artifact-repo NAME            Docker repository for component images [ARTIFACT_REPO, default PREFIX-images]
  --cloudbuild-sa EMAIL           service account builds run as [CLOUDBUILD_SA, default PREFIX-builds@, created]
  --max-delivery-attempts N       Pub/Sub attempts before the dead-letter topic (5-100)
                                  [MAX_DELIVERY_ATTEMPTS, default 10]
  --schedule CRON                 reconcile schedule [SCHEDULE, default "*/5 * * * *"]
  --scheduler-auth oidc|token     how Cloud Scheduler authenticates to /tasks/reconcile
                                  [SCHEDULER_AUTH, default oidc]
  --webhook-secret-file PATH      GitHub App webhook secret [WEBHOOK_SECRET_FILE; generated when absent]
  --github-private-key-file PATH  GitHub App private key (.pem) [GITHUB_PRIVATE_KEY_FILE; needed on the first run]
  --tasks-token-file PATH         token for /tasks/reconcile [TASKS_TOKEN_FILE; generated when absent]
  --database-url-file PATH        KFP_BOT_DATABASE_URL with its password (Cloud SQL) [DATABASE_URL_FILE; optional]
  --dry-run                       print the commands instead of running them [DRY_RUN=1]
  -h, --help                      this help
EOF
}

# shellcheck source=options.sh
source "$(dirname "${BASH_SOURCE[0]}")/options.sh"

PROJECT="${PROJECT:-}"
BOT_URL="${BOT_URL:-}"
REGION="${REGION:-us-central1}"
PREFIX="${PREFIX:-kfp-bot}"
OIDC_AUDIENCE="${OIDC_AUDIENCE:-}"
PIPELINE_BUCKET="${PIPELINE_BUCKET:-}"
ARTIFACT_REPO="${ARTIFACT_REPO:-}"
CLOUDBUILD_SA="${CLOUDBUILD_SA:-}"
MAX_DELIVERY_ATTEMPTS="${MAX_DELIVERY_ATTEMPTS:-10}"
SCHEDULE="${SCHEDULE:-*/5 * * * *}"
SCHEDULER_AUTH="${SCHEDULER_AUTH:-oidc}"
WEBHOOK_SECRET_FILE="${WEBHOOK_SECRET_FILE:-}"
GITHUB_PRIVATE_KEY_FILE="${GITHUB_PRIVATE_KEY_FILE:-}"
TASKS_TOKEN_FILE="${TASKS_TOKEN_FILE:-}"
DATABASE_URL_FILE="${DATABASE_URL_FILE:-}"
DRY_RUN="${DRY_RUN:-0}"

parse_options "--project=PROJECT --bot-url=BOT_URL --region=REGION --prefix=PREFIX --oidc-audience=OIDC_AUDIENCE
  --pipeline-bucket=PIPELINE_BUCKET --artifact-repo=ARTIFACT_REPO --cloudbuild-sa=CLOUDBUILD_SA
  --max-delivery-attempts=MAX_DELIVERY_ATTEMPTS --schedule=SCHEDULE --scheduler-auth=SCHEDULER_AUTH
  --webhook-secret-file=WEBHOOK_SECRET_FILE --github-private-key-file=GITHUB_PRIVATE_KEY_FILE
  --tasks-token-file=TASKS_TOKEN_FILE --database-url-file=DATABASE_URL_FILE" \
  "--dry-run=DRY_RUN" "$@"

[[ -n "$PROJECT" ]] || EXIT_CODE=2 die "--project (or PROJECT) is required"
[[ -n "$BOT_URL" ]] || EXIT_CODE=2 die "--bot-url (or BOT_URL) is required, e.g. https://PROJECT.uc.r.appspot.com"
BOT_URL="${BOT_URL%/}"
[[ "$BOT_URL" == https://* ]] || EXIT_CODE=2 die "--bot-url must be an https:// URL (Pub/Sub pushes only to https): $BOT_URL"
[[ "$SCHEDULER_AUTH" == oidc || "$SCHEDULER_AUTH" == token ]] \
  || EXIT_CODE=2 die "--scheduler-auth must be oidc or token, not '$SCHEDULER_AUTH'"
[[ "$MAX_DELIVERY_ATTEMPTS" =~ ^[0-9]+$ ]] && (( MAX_DELIVERY_ATTEMPTS >= 5 && MAX_DELIVERY_ATTEMPTS <= 100 )) \
  || EXIT_CODE=2 die "--max-delivery-attempts must be a number from 5 to 100 (Pub/Sub's range), not '$MAX_DELIVERY_ATTEMPTS'"
for file in "$WEBHOOK_SECRET_FILE" "$GITHUB_PRIVATE_KEY_FILE" "$TASKS_TOKEN_FILE" "$DATABASE_URL_FILE"; do
  [[ -z "$file" || -r "$file" ]] || EXIT_CODE=2 die "cannot read $file"
done

OIDC_AUDIENCE="${OIDC_AUDIENCE:-$BOT_URL}"
PIPELINE_BUCKET="${PIPELINE_BUCKET:-$PROJECT-$PREFIX-pipelines}"
BUILDS_BUCKET="$PROJECT-$PREFIX-builds"
ARTIFACT_REPO="${ARTIFACT_REPO:-$PREFIX-images}"
PUSH_URL="$BOT_URL/pubsub/push"
TASKS_URL="$BOT_URL/tasks/reconcile"
SA_DOMAIN="$PROJECT.iam.gserviceaccount.com"
RUNTIME_SA="$PREFIX@$SA_DOMAIN"
PUSH_SA="$PREFIX-push@$SA_DOMAIN"
PIPELINES_SA="$PREFIX-pipelines@$SA_DOMAIN"
CREATE_BUILDS_SA=0
if [[ -z "$CLOUDBUILD_SA" ]]; then CLOUDBUILD_SA="$PREFIX-builds@$SA_DOMAIN"; CREATE_BUILDS_SA=1; fi
EVENTS_TOPIC="$PREFIX-events"
NOTIFICATIONS_TOPIC="$PREFIX-notifications"
PIPELINE_EVENTS_TOPIC="$PREFIX-pipeline-events"
DEAD_LETTER_TOPIC="$PREFIX-dead-letter"
CLOUD_BUILDS_TOPIC="cloud-builds"  # the name Cloud Build publishes to
SINK="$PREFIX-pipeline-events"
SCHEDULER_JOB="$PREFIX-reconcile"
WEBHOOK_SECRET="$PREFIX-webhook-secret"
PRIVATE_KEY_SECRET="$PREFIX-github-private-key"
TASKS_TOKEN_SECRET="$PREFIX-tasks-token"
DATABASE_URL_SECRET="$PREFIX-database-url"
SINK_FILTER="logName=\"projects/$PROJECT/logs/aiplatform.googleapis.com%2Fpipeline_job_events\""

TEMP_DIR="$(mktemp -d)"
trap 'rm -rf "$TEMP_DIR"' EXIT
chmod 700 "$TEMP_DIR"

# -- running gcloud -------------------------------------------------------------------------

# A mutating gcloud call (printed instead under --dry-run); its output goes to stderr.
gc() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '%q ' gcloud "$@" "--project=$PROJECT" --quiet | sed 's/ $//'
    printf '\n'
  else
    gcloud "$@" "--project=$PROJECT" --quiet >&2
  fi
}

# Whether a resource exists (`gcloud ... describe`); under --dry-run nothing is asked: it does not.
exists() {
  [[ "$DRY_RUN" == 1 ]] && return 1
  gcloud "$@" "--project=$PROJECT" --quiet >/dev/null 2>&1
}

# ensure LABEL DESCRIBE-ARGS... -- CREATE-ARGS...: create the resource unless describe finds it.
ensure() {
  local label="$1" describe=()
  shift
  while [[ "$1" != "--" ]]; do describe+=("$1"); shift; done
  shift
  if exists "${describe[@]}"; then
    log "exists: $label"
  else
    log "creating: $label"
    gc "$@"
  fi
}

# A value gcloud reports (e.g. the project number); a placeholder under --dry-run.
query() {
  local placeholder="$1"
  shift
  if [[ "$DRY_RUN" == 1 ]]; then printf '%s' "$placeholder"; else gcloud "$@" "--project=$PROJECT" --quiet; fi
}

# ensure_secret NAME FILE: create the secret from FILE (or from a generated value when FILE is
# "generate"); an existing secret is left as it is (add versions with `gcloud secrets versions add`).
ensure_secret() {
  local name="$1" file="$2"
  if exists secrets describe "$name"; then
    log "exists: secret $name (value unchanged)"
  elif [[ "$file" == generate ]]; then
    log "creating: secret $name (generated value)"
    if [[ "$DRY_RUN" == 1 ]]; then
      gc secrets create "$name" --replication-policy=automatic --data-file=-
    else
      random_token | gc secrets create "$name" --replication-policy=automatic --data-file=-
    fi
  else
    log "creating: secret $name (from $file)"
    gc secrets create "$name" --replication-policy=automatic "--data-file=$file"
  fi
  gc secrets add-iam-policy-binding "$name" "--member=serviceAccount:$RUNTIME_SA" \
    --role=roles/secretmanager.secretAccessor
}

random_token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

grant_project() {
  gc projects add-iam-policy-binding "$PROJECT" "--member=$1" "--role=$2" --condition=None
}

# ensure_push_subscription NAME TOPIC: push to the bot with OIDC, dead-lettering, retry backoff.
ensure_push_subscription() {
  local name="$1" topic="$2"
  ensure "push subscription $name ($topic -> $PUSH_URL)" pubsub subscriptions describe "$name" -- \
    pubsub subscriptions create "$name" "--topic=$topic" "--push-endpoint=$PUSH_URL" \
    "--push-auth-service-account=$PUSH_SA" "--push-auth-token-audience=$OIDC_AUDIENCE" \
    --ack-deadline=600 "--dead-letter-topic=$DEAD_LETTER_TOPIC" \
    "--max-delivery-attempts=$MAX_DELIVERY_ATTEMPTS" --min-retry-delay=10s --max-retry-delay=600s \
    --message-retention-duration=7d --expiration-period=never
  # Dead-lettering needs Pub/Sub's own agent to take messages off this subscription.
  gc pubsub subscriptions add-iam-policy-binding "$name" "--member=serviceAccount:$PUBSUB_AGENT" \
    --role=roles/pubsub.subscriber
}

# -- preflight: secrets that cannot be generated ---------------------------------------------

if [[ "$DRY_RUN" != 1 && -z "$GITHUB_PRIVATE_KEY_FILE" ]] && ! exists secrets describe "$PRIVATE_KEY_SECRET"; then
  die "secret $PRIVATE_KEY_SECRET does not exist yet: pass --github-private-key-file PATH (the .pem downloaded \
from the GitHub App's settings page). Nothing was changed."
fi

# -- APIs ------------------------------------------------------------------------------------

log "enabling APIs"
gc services enable pubsub.googleapis.com cloudbuild.googleapis.com aiplatform.googleapis.com \
  cloudscheduler.googleapis.com secretmanager.googleapis.com artifactregistry.googleapis.com \
  logging.googleapis.com iam.googleapis.com storage.googleapis.com

PROJECT_NUMBER="$(query '<PROJECT_NUMBER>' projects describe "$PROJECT" '--format=value(projectNumber)')"
PUBSUB_AGENT="service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"

# -- service accounts --------------------------------------------------------------------------

ensure "service account $RUNTIME_SA (the bot)" iam service-accounts describe "$RUNTIME_SA" -- \
  iam service-accounts create "$PREFIX" "--display-name=kfp-bot service"
ensure "service account $PUSH_SA (Pub/Sub push and Cloud Scheduler tokens)" \
  iam service-accounts describe "$PUSH_SA" -- \
  iam service-accounts create "$PREFIX-push" "--display-name=kfp-bot push and scheduler invoker"
ensure "service account $PIPELINES_SA (Vertex AI pipeline runs)" iam service-accounts describe "$PIPELINES_SA" -- \
  iam service-accounts create "$PREFIX-pipelines" "--display-name=kfp-bot pipeline runs"
if [[ "$CREATE_BUILDS_SA" == 1 ]]; then
  ensure "service account $CLOUDBUILD_SA (Cloud Build)" iam service-accounts describe "$CLOUDBUILD_SA" -- \
    iam service-accounts create "$PREFIX-builds" "--display-name=kfp-bot image builds"
fi

log "roles of the bot's service account"
for role in roles/aiplatform.user roles/cloudbuild.builds.editor roles/logging.logWriter roles/cloudsql.client; do
  grant_project "serviceAccount:$RUNTIME_SA" "$role"
done
for acted_as in "$PIPELINES_SA" "$CLOUDBUILD_SA"; do  # it submits jobs and builds that run as these
  gc iam service-accounts add-iam-policy-binding "$acted_as" "--member=serviceAccount:$RUNTIME_SA" \
    --role=roles/iam.serviceAccountUser
done
log "roles of the pipeline runs' and the builds' service accounts"
grant_project "serviceAccount:$PIPELINES_SA" roles/aiplatform.user
grant_project "serviceAccount:$PIPELINES_SA" roles/logging.logWriter
grant_project "serviceAccount:$CLOUDBUILD_SA" roles/logging.logWriter
# Pub/Sub signs the push OIDC tokens as the push service account.
gc iam service-accounts add-iam-policy-binding "$PUSH_SA" "--member=serviceAccount:$PUBSUB_AGENT" \
  --role=roles/iam.serviceAccountTokenCreator

# -- secrets -----------------------------------------------------------------------------------

ensure_secret "$WEBHOOK_SECRET" "${WEBHOOK_SECRET_FILE:-generate}"
ensure_secret "$PRIVATE_KEY_SECRET" "${GITHUB_PRIVATE_KEY_FILE:-<github-private-key-file>}"
ensure_secret "$TASKS_TOKEN_SECRET" "${TASKS_TOKEN_FILE:-generate}"
if [[ -n "$DATABASE_URL_FILE" ]]; then ensure_secret "$DATABASE_URL_SECRET" "$DATABASE_URL_FILE"; fi

# -- images and the pipeline root ---------------------------------------------------------------

ensure "Artifact Registry repository $ARTIFACT_REPO" \
  artifacts repositories describe "$ARTIFACT_REPO" "--location=$REGION" -- \
  artifacts repositories create "$ARTIFACT_REPO" --repository-format=docker "--location=$REGION" \
  "--description=kfp-bot component images"
gc artifacts repositories add-iam-policy-binding "$ARTIFACT_REPO" "--location=$REGION" \
  "--member=serviceAccount:$CLOUDBUILD_SA" --role=roles/artifactregistry.writer
gc artifacts repositories add-iam-policy-binding "$ARTIFACT_REPO" "--location=$REGION" \
  "--member=serviceAccount:$PIPELINES_SA" --role=roles/artifactregistry.reader

ensure "bucket gs://$PIPELINE_BUCKET (pipeline root)" storage buckets describe "gs://$PIPELINE_BUCKET" -- \
  storage buckets create "gs://$PIPELINE_BUCKET" "--location=$REGION" --uniform-bucket-level-access
for member in "$PIPELINES_SA" "$RUNTIME_SA"; do
  gc storage buckets add-iam-policy-binding "gs://$PIPELINE_BUCKET" "--member=serviceAccount:$member" \
    --role=roles/storage.objectAdmin
done

# Build contexts the bot uploads and the pipelines Cloud Build compiles: the bot writes sources and
# reads compiled specs, builds read sources and write their artifacts. No secret is reachable from
# the builds' account: it gets no Secret Manager role anywhere.
ensure "bucket gs://$BUILDS_BUCKET (build contexts and compiled pipelines)" storage buckets describe \
  "gs://$BUILDS_BUCKET" -- storage buckets create "gs://$BUILDS_BUCKET" "--location=$REGION" \
  --uniform-bucket-level-access
for member in "$CLOUDBUILD_SA" "$RUNTIME_SA"; do
  gc storage buckets add-iam-policy-binding "gs://$BUILDS_BUCKET" "--member=serviceAccount:$member" \
    --role=roles/storage.objectAdmin
done

# -- topics and push subscriptions --------------------------------------------------------------

for topic in "$EVENTS_TOPIC" "$NOTIFICATIONS_TOPIC" "$PIPELINE_EVENTS_TOPIC" "$DEAD_LETTER_TOPIC" \
             "$CLOUD_BUILDS_TOPIC"; do
  ensure "topic $topic" pubsub topics describe "$topic" -- pubsub topics create "$topic"
done
for topic in "$EVENTS_TOPIC" "$NOTIFICATIONS_TOPIC"; do
  gc pubsub topics add-iam-policy-binding "$topic" "--member=serviceAccount:$RUNTIME_SA" \
    --role=roles/pubsub.publisher
done
gc pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" "--member=serviceAccount:$PUBSUB_AGENT" \
  --role=roles/pubsub.publisher
# A topic without a subscription drops what it gets: keep dead letters for a week, to inspect.
ensure "subscription $PREFIX-dead-letter-hold (pull, to inspect dead letters)" \
  pubsub subscriptions describe "$PREFIX-dead-letter-hold" -- \
  pubsub subscriptions create "$PREFIX-dead-letter-hold" "--topic=$DEAD_LETTER_TOPIC" \
  --message-retention-duration=7d --expiration-period=never

ensure_push_subscription "$PREFIX-events-push" "$EVENTS_TOPIC"
ensure_push_subscription "$PREFIX-cloud-builds-push" "$CLOUD_BUILDS_TOPIC"
ensure_push_subscription "$PREFIX-pipeline-events-push" "$PIPELINE_EVENTS_TOPIC"
# The Slack notifier consumes run notifications; other systems may add their own subscriptions.
ensure_push_subscription "$PREFIX-notifications-push" "$NOTIFICATIONS_TOPIC"

# -- Vertex AI pipeline job events: a log sink to their topic ------------------------------------

ensure "log sink $SINK ($SINK_FILTER)" logging sinks describe "$SINK" -- \
  logging sinks create "$SINK" "pubsub.googleapis.com/projects/$PROJECT/topics/$PIPELINE_EVENTS_TOPIC" \
  "--log-filter=$SINK_FILTER" "--description=Vertex AI pipeline job state changes for kfp-bot"
SINK_WRITER="$(query '<SINK_WRITER_IDENTITY>' logging sinks describe "$SINK" '--format=value(writerIdentity)')"
gc pubsub topics add-iam-policy-binding "$PIPELINE_EVENTS_TOPIC" "--member=$SINK_WRITER" \
  --role=roles/pubsub.publisher

# -- the reconcile schedule ----------------------------------------------------------------------

scheduler_auth=("--oidc-service-account-email=$PUSH_SA" "--oidc-token-audience=$OIDC_AUDIENCE")
if [[ "$SCHEDULER_AUTH" == token && "$DRY_RUN" == 1 ]]; then
  scheduler_auth=("--flags-file=<file with --headers: Authorization=Bearer TASKS_TOKEN>")
elif [[ "$SCHEDULER_AUTH" == token ]] && ! exists scheduler jobs describe "$SCHEDULER_JOB" "--location=$REGION"; then
  # The token goes to gcloud in a flags file, never on the command line.
  flags_file="$TEMP_DIR/scheduler-flags.yaml"
  if [[ -n "$TASKS_TOKEN_FILE" ]]; then
    token="$(tr -d '\r\n' <"$TASKS_TOKEN_FILE")"
  else
    token="$(gcloud secrets versions access latest "--secret=$TASKS_TOKEN_SECRET" "--project=$PROJECT" --quiet)"
  fi
  ( umask 077; printf -- "--headers: 'Authorization=Bearer %s'\n" "${token//\'/\'\'}" >"$flags_file" )
  unset token
  scheduler_auth=("--flags-file=$flags_file")
fi
ensure "Cloud Scheduler job $SCHEDULER_JOB ($SCHEDULE -> $TASKS_URL, $SCHEDULER_AUTH)" \
  scheduler jobs describe "$SCHEDULER_JOB" "--location=$REGION" -- \
  scheduler jobs create http "$SCHEDULER_JOB" "--location=$REGION" "--schedule=$SCHEDULE" \
  --time-zone=Etc/UTC "--uri=$TASKS_URL" --http-method=POST --attempt-deadline=300s "${scheduler_auth[@]}"

# -- what to configure -------------------------------------------------------------------------

cat >&2 <<EOF
==> done. Configure the bot with:
  KFP_BOT_GCP_PROJECT=$PROJECT
  KFP_BOT_GCP_REGION=$REGION
  KFP_BOT_BUS=pubsub
  KFP_BOT_EVENTS_TOPIC=$EVENTS_TOPIC
  KFP_BOT_NOTIFICATIONS_TOPIC=$NOTIFICATIONS_TOPIC
  KFP_BOT_PUBSUB_PUSH_AUDIENCE=$OIDC_AUDIENCE
  KFP_BOT_PUBSUB_PUSH_SERVICE_ACCOUNT=$PUSH_SA
  KFP_BOT_BUILDER=cloudbuild
  KFP_BOT_CLOUDBUILD_SERVICE_ACCOUNT=$CLOUDBUILD_SA
  KFP_BOT_CLOUDBUILD_BUCKET=$BUILDS_BUCKET
  KFP_BOT_RUNNER=vertex
  KFP_BOT_PIPELINE_ROOT=gs://$PIPELINE_BUCKET/pipeline-root
  KFP_BOT_PIPELINE_SERVICE_ACCOUNT=$PIPELINES_SA
  image registry: $REGION-docker.pkg.dev/$PROJECT/$ARTIFACT_REPO
  run the bot as: $RUNTIME_SA
  secrets (Secret Manager): $WEBHOOK_SECRET -> KFP_BOT_WEBHOOK_SECRET, $PRIVATE_KEY_SECRET -> \
KFP_BOT_GITHUB_PRIVATE_KEY, $TASKS_TOKEN_SECRET -> KFP_BOT_TASKS_TOKEN, $DATABASE_URL_SECRET -> \
KFP_BOT_DATABASE_URL (if created)
EOF
