"""hello-pipeline: lightweight Python components only, so it runs anywhere with kfp.local.

Compiled with the repository root as working directory (and on sys.path), which is what lets
it import the shared `utils` package.
"""

from typing import NamedTuple

from kfp import dsl

from utils.naming import describe

BASE_IMAGE = "python:3.11-slim"


@dsl.component(base_image=BASE_IMAGE)
def greet(name: str, punctuation: str, shout: bool) -> str:
    """Say hello to `name`."""
    text = f"Hello, {name}{punctuation}"
    return text.upper() if shout else text


@dsl.component(base_image=BASE_IMAGE)
def count_words(text: str, repeat: int) -> int:
    """Count the words of `text`, `repeat` times over."""
    print(f"counting words of {text!r}")
    return len(text.split()) * repeat


@dsl.component(base_image=BASE_IMAGE)
def scale(count: int, factor: float) -> float:
    """Multiply the word count by `factor`."""
    return count * factor


@dsl.pipeline(name="hello-pipeline", description=describe("hello-pipeline", "greet, count, scale"))
def hello_pipeline(
    name: str = "world",
    punctuation: str = "!",
    repeat: int = 2,
    factor: float = 1.5,
    shout: bool = False,
) -> NamedTuple("Outputs", greeting=str, score=float):
    greeting = greet(name=name, punctuation=punctuation, shout=shout)
    words = count_words(text=greeting.output, repeat=repeat)
    score = scale(count=words.output, factor=factor)
    Outputs = NamedTuple("Outputs", greeting=str, score=float)
    return Outputs(greeting=greeting.output, score=score.output)


if __name__ == "__main__":
    from kfp import compiler

    compiler.Compiler().compile(hello_pipeline, "pipelines/hello-pipeline/hello-pipeline.yaml")
