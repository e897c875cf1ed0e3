"""Google Cloud clients, made one way, and their errors read one way.

Every client the bot uses (Vertex AI pipelines and schedules, Cloud Build, Cloud Storage for
templates and Cloud Build's artifacts, Pub/Sub) is made by `google_client` with the loopback
rule of `deploy.endpoints`: a loopback endpoint (fakes, emulators) gets anonymous credentials,
over an insecure gRPC channel for gRPC clients; any other endpoint, or none (the library's
default), TLS with the given or the application default credentials, and without any, an error
that names the service and says how to provide them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.exceptions import DefaultCredentialsError

from deploy.endpoints import is_loopback

C = TypeVar("C")
CREDENTIALS_HINT = "run the bot as a service account, or `gcloud auth application-default login` on a laptop"


def google_client(client: Callable[..., C], endpoint: str | None, *, transport: Callable[..., Any] | None = None,
                  credentials: Credentials | None = None,
                  refuse: Callable[[str], Exception] | None = None, **options: Any) -> C:
    """`client(...)` for `endpoint` (host[:port], or a URL).

    `transport` is the client's gRPC transport class (None for an HTTP client such as Cloud
    Storage's); `refuse(reason)` makes the error raised when no credentials are found (None:
    the library's own error); `options` go to `client` as they are (a project, for instance).
    """
    if endpoint and is_loopback(endpoint):
        if transport is None:  # an HTTP client: anonymous, at that address
            return client(credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}, **options)
        import grpc

        target = urlsplit(endpoint).netloc if "//" in endpoint else endpoint
        return client(transport=transport(channel=grpc.insecure_channel(target), credentials=AnonymousCredentials()),
                      **options)
    try:
        return client(client_options={"api_endpoint": endpoint} if endpoint else None, credentials=credentials,
                      **options)
    except DefaultCredentialsError as exc:
        if refuse is None:
            raise
        raise refuse(first_line(exc)) from None


def make_gcs_client(endpoint: str | None = None, project: str | None = None) -> Any:
    """A Cloud Storage client; a loopback `endpoint` (fakes, emulators) gets anonymous credentials."""
    import google.cloud.storage as storage

    # An anonymous client still wants a project name; a fake does not care which.
    anonymous = bool(endpoint) and is_loopback(endpoint or "")
    return google_client(storage.Client, endpoint, project=project or ("test" if anonymous else None))


def api_cause(exc: BaseException) -> BaseException:
    """The error behind a `RetryError` (the last attempt's), or `exc` itself."""
    if isinstance(exc, api_exceptions.RetryError) and exc.cause is not None:
        return exc.cause
    return exc


def first_line(said: BaseException | str) -> str:
    """The first line of what an error (its API `message` when it has one) or a text says, cut to
    300 characters and without a closing full stop: to quote inside a sentence of ours."""
    text = str(getattr(said, "message", "") or said).strip()
    if not text:
        return type(said).__name__ if isinstance(said, BaseException) else ""
    return text.splitlines()[0][:300].rstrip(".")
