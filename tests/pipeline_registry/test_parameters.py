"""Parameters from settings.yaml and overrides, checked against a pipeline's declared inputs."""

from __future__ import annotations

import pytest

from pipeline_registry.errors import ParameterError
from pipeline_registry.models import ParameterType, PipelineInput
from pipeline_registry.parameters import parse_assignments, parse_override, resolve_parameters
from pipeline_registry.settings import parse_settings

SETTINGS_FILE = "pipelines/training-pipeline/settings.yaml"

INPUTS = (
    PipelineInput("dataset", ParameterType.STRING, optional=False),
    PipelineInput("epochs", ParameterType.INTEGER, optional=True, default=1),
    PipelineInput("learning_rate", ParameterType.DOUBLE, optional=True, default=0.001),
    PipelineInput("shuffle", ParameterType.BOOLEAN, optional=True, default=False),
    PipelineInput("layers", ParameterType.LIST, optional=True, default=[8]),
    PipelineInput("options", ParameterType.STRUCT, optional=True, default={}),
    PipelineInput("notes", ParameterType.STRING, optional=True),
    PipelineInput("base_model", ParameterType.ARTIFACT, optional=True),
)
SPEC = {spec.name: spec for spec in INPUTS}


def settings(text: str):
    return parse_settings(text, SETTINGS_FILE)


@pytest.mark.parametrize("name, raw, expected", [
    ("epochs", "3", 3),
    ("epochs", "-2", -2),
    ("learning_rate", "0.01", 0.01),
    ("learning_rate", "2", 2.0),
    ("learning_rate", "1e-3", 0.001),
    ("shuffle", "true", True),
    ("shuffle", "Yes", True),
    ("shuffle", "1", True),
    ("shuffle", "FALSE", False),
    ("shuffle", "no", False),
    ("shuffle", "0", False),
    ("layers", "[16, 8]", [16, 8]),
    ("options", '{"dropout": 0.5}', {"dropout": 0.5}),
    ("dataset", " gs://bucket/data 2 ", " gs://bucket/data 2 "),
    ("dataset", "42", "42"),
])
def test_override_is_typed_by_the_declared_input(name: str, raw: str, expected: object) -> None:
    value = parse_override(raw, SPEC[name])
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("name, raw, message", [
    ("epochs", "three", "epochs: expected an integer, got 'three'"),
    ("epochs", "1.5", "epochs: expected an integer, got '1.5'"),
    ("learning_rate", "fast", "learning_rate: expected a number, got 'fast'"),
    ("learning_rate", "nan", "learning_rate: expected a number, got 'nan'"),
    ("shuffle", "maybe", "shuffle: expected true or false, got 'maybe'"),
    ("layers", '{"a": 1}', "layers: expected a JSON list, got '{\"a\": 1}'"),
    ("layers", "[1, 2", "layers: expected a JSON list, got '[1, 2'"),
    ("options", "[1]", "options: expected a JSON object, got '[1]'"),
    ("base_model", "gs://x", "'base_model' is an artifact input; it cannot be set as a parameter"),
])
def test_override_of_the_wrong_type_is_refused(name: str, raw: str, message: str) -> None:
    with pytest.raises(ParameterError) as caught:
        parse_override(raw, SPEC[name])
    assert caught.value.problems == [message]


def test_assignments_split_on_the_first_equals_sign() -> None:
    assert parse_assignments(["epochs=3", "query=a=b", "notes="]) == {
        "epochs": "3", "query": "a=b", "notes": ""}


def test_assignments_without_equals_sign_are_refused() -> None:
    with pytest.raises(ParameterError) as caught:
        parse_assignments(["epochs=3", "lr", "=5"])
    assert caught.value.problems == [
        "'lr' is not a parameter assignment: write name=value",
        "'=5' is not a parameter assignment: write name=value",
    ]


def test_settings_and_overrides_merge_with_overrides_winning() -> None:
    merged = resolve_parameters(
        settings("arguments:\n  dataset: gs://b/faces\n  epochs: 2\nhyperparameters:\n  learning_rate: 1\n"),
        {"epochs": "5", "shuffle": "yes"},
        INPUTS,
    )
    assert merged == {"dataset": "gs://b/faces", "epochs": 5, "learning_rate": 1.0, "shuffle": True}
    assert isinstance(merged["learning_rate"], float)


def test_defaults_are_left_to_the_pipeline() -> None:
    assert resolve_parameters(settings("arguments:\n  dataset: d\n"), {}, INPUTS) == {"dataset": "d"}


def test_yaml_lists_and_mappings_are_accepted_for_list_and_struct_inputs() -> None:
    merged = resolve_parameters(
        settings("arguments:\n  dataset: d\n  layers: [4, 2]\n  options:\n    dropout: 0.1\n"), {}, INPUTS)
    assert merged["layers"] == [4, 2]
    assert merged["options"] == {"dropout": 0.1}


def test_unknown_settings_parameter_names_the_file_line_and_a_suggestion() -> None:
    with pytest.raises(ParameterError) as caught:
        resolve_parameters(settings("arguments:\n  dataset: d\n  learning_rat: 0.1\n"), {}, INPUTS)
    assert caught.value.problems == [
        f"{SETTINGS_FILE}:3: unknown parameter 'learning_rat' (did you mean 'learning_rate'?)"]
    assert "dataset (string, required)" in caught.value.valid
    assert "epochs (integer, default 1)" in caught.value.valid
    assert not any(v.startswith("base_model") for v in caught.value.valid)
    assert "declared inputs: dataset (string, required), epochs (integer, default 1)" in str(caught.value)


def test_unknown_override_without_a_close_match_has_no_suggestion() -> None:
    with pytest.raises(ParameterError) as caught:
        resolve_parameters(settings("arguments:\n  dataset: d\n"), {"zzz": "1"}, INPUTS)
    assert caught.value.problems == ["unknown parameter 'zzz'"]


def test_every_problem_is_reported_at_once() -> None:
    text = ("arguments:\n"
            "  epochs: '3'\n"          # a string for an integer
            "  shuffle: 1\n"           # an integer for a boolean
            "hyperparameters:\n"
            "  learning_rate: true\n"  # a boolean for a number
            "  base_model: gs://m\n")  # an artifact
    with pytest.raises(ParameterError) as caught:
        resolve_parameters(settings(text), {"epoch": "2", "notes": "x", "layers": "nope"}, INPUTS)
    assert caught.value.problems == [
        f"{SETTINGS_FILE}:2: epochs: expected an integer, got the text '3'",
        f"{SETTINGS_FILE}:3: shuffle: expected true or false, got the integer 1",
        f"{SETTINGS_FILE}:5: learning_rate: expected a number, got the boolean true",
        f"{SETTINGS_FILE}:6: 'base_model' is an artifact input; it cannot be set as a parameter",
        "unknown parameter 'epoch' (did you mean 'epochs'?)",
        "layers: expected a JSON list, got 'nope'",
        f"missing required parameter 'dataset' (string): set it in {SETTINGS_FILE} or pass dataset=...",
    ]


def test_a_number_for_a_string_input_suggests_quoting() -> None:
    with pytest.raises(ParameterError) as caught:
        resolve_parameters(settings("arguments:\n  dataset: 2024\n"), {}, INPUTS)
    assert caught.value.problems == [
        f"{SETTINGS_FILE}:2: dataset: expected a string, got the integer 2024 "
        "(quote it to make it a string: dataset: \"2024\")"]


def test_a_float_is_not_an_integer_and_a_boolean_is_not_a_number() -> None:
    with pytest.raises(ParameterError) as caught:
        resolve_parameters(settings("arguments:\n  dataset: d\n  epochs: 2.5\n  learning_rate: false\n"),
                           {}, INPUTS)
    assert caught.value.problems == [
        f"{SETTINGS_FILE}:3: epochs: expected an integer, got the number 2.5",
        f"{SETTINGS_FILE}:4: learning_rate: expected a number, got the boolean false",
    ]


def test_an_override_replaces_a_bad_settings_value() -> None:
    merged = resolve_parameters(settings("arguments:\n  dataset: d\n  epochs: many\n"), {"epochs": "4"}, INPUTS)
    assert merged == {"dataset": "d", "epochs": 4}


def test_required_input_given_by_override_only() -> None:
    assert resolve_parameters(settings(""), {"dataset": "gs://x"}, INPUTS) == {"dataset": "gs://x"}


def test_optional_input_without_default_is_not_required() -> None:
    inputs = (PipelineInput("notes", ParameterType.STRING, optional=True),)
    assert resolve_parameters(settings(""), {}, inputs) == {}
