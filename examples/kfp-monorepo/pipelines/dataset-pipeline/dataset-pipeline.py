"""dataset-pipeline: one container component of its own plus the shared `notify`, loaded by file."""

import kfp
from kfp import dsl

split_op = kfp.components.load_component_from_file("pipelines/dataset-pipeline/split/component.yaml")
notify_op = kfp.components.load_component_from_file("components/notify/component.yaml")


@dsl.pipeline(name="dataset-pipeline", description="Split a dataset into train and test parts.")
def dataset_pipeline(source: str = "gs://my-bucket/raw/faces.csv", test_fraction: float = 0.2, seed: int = 42):
    split = split_op(source=source, test_fraction=test_fraction, seed=seed)
    notify_op(subject="dataset-pipeline", message=split.outputs["summary"])


if __name__ == "__main__":
    from kfp import compiler

    compiler.Compiler().compile(dataset_pipeline, "pipelines/dataset-pipeline/dataset-pipeline.yaml")
