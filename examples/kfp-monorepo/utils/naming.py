"""Names and descriptions shared by the example pipelines (imported at compile time)."""

PIPELINE_PREFIX = "kfp-bot example"


def describe(pipeline: str, what: str) -> str:
    """The description a pipeline is compiled with: `<prefix> <pipeline>: <what>`."""
    return f"{PIPELINE_PREFIX} {pipeline}: {what}"
