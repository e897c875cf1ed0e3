"""training-pipeline: container components built from this folder plus the shared `notify`.

Components are found by folder name, as in the seed template. kfp 2 removed
`kfp.components.ComponentStore`; `utils.components.ComponentStore` does the same lookup.
"""

import kfp
from kfp import dsl

try:
    ComponentStore = kfp.components.ComponentStore  # kfp 1.8
except AttributeError:
    from utils.components import ComponentStore

component_store = ComponentStore(local_search_paths=["pipelines/training-pipeline", "components"])

train_op = component_store.load_component("train")
evaluate_op = component_store.load_component("evaluate")
notify_op = component_store.load_component("notify")


@dsl.pipeline(name="training-pipeline", description="Train a model, evaluate it, report the result.")
def training_pipeline(
    dataset: str,
    epochs: int = 1,
    learning_rate: float = 0.001,
    batch_size: int = 32,
    min_accuracy: float = 0.8,
):
    train = train_op(dataset=dataset, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size)
    evaluate = evaluate_op(model=train.outputs["model"], min_accuracy=min_accuracy)
    notify_op(subject="training-pipeline", message=evaluate.outputs["summary"])


if __name__ == "__main__":
    from kfp import compiler

    compiler.Compiler().compile(training_pipeline, "pipelines/training-pipeline/training-pipeline.yaml")
