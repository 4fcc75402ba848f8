"""ModelConfig refuses a setting of the wrong type by name, whichever way it comes in."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.detection.process.config import BATADAL, SKAB, SKAB_FIRST_ATTEMPT, ModelConfig
from plantwarden.detection.process.model import ProcessModel
from plantwarden.detection.process_watch.watch import PLANT_CONFIG
from tests.unit.detection.process.test_model import fitted

OPTIONAL = "model setting 'slow_autocorrelation' must be a finite number"
WRONG = [
    ("factor", "abc", "model setting 'factor' must be a finite number, not \"abc\""),
    ("factor", True, "model setting 'factor' must be a finite number, not true"),
    ("smoothing", float("nan"), "model setting 'smoothing' must be a finite number, not NaN"),
    ("hold_seconds", float("inf"), "model setting 'hold_seconds' must be a finite number, not Infinity"),
    ("gap_periods", float("-inf"), "model setting 'gap_periods' must be a finite number, not -Infinity"),
    ("hold_seconds", None, "model setting 'hold_seconds' must be a finite number, not null"),
    ("shrinkage", [0.1], "model setting 'shrinkage' must be a finite number, not [0.1]"),
    ("seasonal", 1, "model setting 'seasonal' must be true or false, not 1"),
    ("seasonal", None, "model setting 'seasonal' must be true or false, not null"),
    ("seasonal", "yes", "model setting 'seasonal' must be true or false, not \"yes\""),
    ("slow_autocorrelation", "high", f'{OPTIONAL} or null, not "high"'),
    ("slow_autocorrelation", False, f"{OPTIONAL} or null, not false"),
]


@pytest.mark.parametrize(("name", "value", "problem"), WRONG)
def test_from_dict_names_a_setting_of_the_wrong_type(name: str, value: Any, problem: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        ModelConfig.from_dict({name: value})
    assert str(raised.value) == problem


@pytest.mark.parametrize(("name", "value", "problem"), WRONG)
def test_the_constructor_names_a_setting_of_the_wrong_type(name: str, value: Any, problem: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        ModelConfig(**{name: value})
    assert str(raised.value) == problem


def test_every_setting_of_the_wrong_type_is_named_before_the_ranges_are_checked() -> None:
    with pytest.raises(InvalidInput) as raised:
        ModelConfig.from_dict({"smoothing": 0, "factor": "2", "quantile": float("nan")})
    assert str(raised.value) == (
        "model setting 'quantile' must be a finite number, not NaN; "
        "model setting 'factor' must be a finite number, not \"2\""
    )


def test_a_value_json_cannot_spell_is_shown_as_python_does() -> None:
    with pytest.raises(InvalidInput, match=r"'factor' must be a finite number, not \{1\}$"):
        ModelConfig.from_dict({"factor": {1}})


def test_ints_are_taken_where_floats_are_declared_and_none_where_it_is_optional() -> None:
    config = ModelConfig.from_dict(
        {"shrinkage": 0, "smoothing": 1, "quantile": 1, "factor": 2, "hold_seconds": 30, "gap_periods": 10}
        | {"reorder_seconds": 0, "slow_autocorrelation": 1, "seasonal": True}
    )
    assert (config.factor, config.hold_seconds, config.slow_autocorrelation) == (2, 30, 1)
    assert ModelConfig(slow_autocorrelation=None).slow_autocorrelation is None
    assert ModelConfig(factor=2.5, seasonal=False).factor == 2.5


def test_the_range_and_unknown_name_checks_stay() -> None:
    with pytest.raises(InvalidInput, match=r"^model configuration out of range: smoothing, factor$"):
        ModelConfig.from_dict({"smoothing": 0, "factor": -1})
    with pytest.raises(InvalidInput, match=r"^unknown model settings: colour$"):
        ModelConfig.from_dict({"colour": 1, "factor": "x"})


@pytest.mark.parametrize("config", [ModelConfig(), SKAB, SKAB_FIRST_ATTEMPT, BATADAL, PLANT_CONFIG])
def test_the_committed_configurations_survive_json(config: ModelConfig) -> None:
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_a_saved_model_of_an_older_version_still_loads() -> None:
    """The settings as a saved model has held them since the first version (ints where a store
    hands back whole numbers), every one of them present."""
    saved = json.loads(json.dumps(fitted().to_dict()))
    saved["config"] = json.loads(
        '{"shrinkage": 0.05, "smoothing": 0.1, "quantile": 0.999, "factor": 2, "hold_seconds": 30,'
        ' "seasonal": false, "gap_periods": 10, "reorder_seconds": 0, "slow_autocorrelation": null}'
    )
    model = ProcessModel.from_dict(saved)
    assert model.config == PLANT_CONFIG


@pytest.mark.parametrize(("name", "value", "problem"), WRONG[:6])
def test_a_saved_model_with_a_setting_of_the_wrong_type_is_refused_by_name(
    name: str, value: Any, problem: str
) -> None:
    saved = json.loads(json.dumps(fitted().to_dict()))
    saved["config"][name] = value
    with pytest.raises(InvalidInput) as raised:
        ProcessModel.from_dict(saved)
    assert str(raised.value) == problem
