"""layers.settings: the setting checks every package uses; each interval at its edges, the errors' wording."""

from __future__ import annotations

import math
import re
from pathlib import Path

import attrs
import numpy as np
import pytest

from lamina.layers import settings

# check -> (values it takes, values it refuses, what the error says)
CASES = {
    settings.positive_int: ([1, 7, np.int64(3)], [0, -1, 2.0, True, "3", None], "a positive int"),
    settings.non_negative_int: ([0, 5, np.uint8(2)], [-1, 0.0, False, None], "an int >= 0"),
    settings.finite_number: ([0, -2.5, np.float32(1e30)], [math.inf, math.nan, True, "1", None],
                             "a finite number"),
    settings.positive_number: ([1e-300, 3, np.float64(0.5)], [0, -1e-9, math.inf, math.nan, False],
                               "a positive finite number"),
    settings.non_negative_number: ([0, 0.0, 2], [-1e-300, math.inf, math.nan, True], "a finite number >= 0"),
    settings.fraction_closed: ([0, 0.5, 1], [-1e-9, 1 + 1e-9, math.nan, True], "a number in [0, 1]"),
    settings.fraction_right_open: ([0, 0.999], [1, -0.1, math.nan, False], "a number in [0, 1)"),
    settings.fraction_left_open: ([1, 1e-9], [0, 1.5, math.nan], "a number in (0, 1]"),
    settings.fraction_open: ([0.5, 1e-9], [0, 1, math.nan], "a number in (0, 1)"),
}


@pytest.mark.parametrize("check", CASES, ids=lambda check: check.__name__)
def test_each_check_takes_its_interval_and_refuses_the_rest_naming_who_and_what(check):
    good, bad, what = CASES[check]
    for value in good:
        assert check("Who", "size", value) == value
    for value in bad:
        message = f"Who: size must be {what}, got {value!r}"
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            check("Who", "size", value)


def test_checks_give_ints_as_int_and_numbers_as_float():
    assert type(settings.positive_int("w", "n", np.int64(3))) is int
    assert type(settings.positive_number("w", "x", np.float32(0.5))) is float
    assert type(settings.fraction_closed("w", "x", 1)) is float


def test_allow_none_lets_none_through_and_says_so_in_the_error():
    assert settings.positive_int("fit", "patience", None, allow_none=True) is None
    assert settings.positive_number("SGD", "clip_norm", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"^fit: patience must be a positive int or None, got 0$"):
        settings.positive_int("fit", "patience", 0, allow_none=True)


def test_one_of_lists_the_choices_and_never_takes_true_for_1():
    assert settings.one_of("Conv2D", "padding", "same", ("same", "valid")) == "same"
    with pytest.raises(ValueError, match=r"^Conv2D: padding must be one of 'same', 'valid', got 'full'$"):
        settings.one_of("Conv2D", "padding", "full", ("same", "valid"))
    with pytest.raises(ValueError, match="must be one of 1, 2, got True"):
        settings.one_of("w", "k", True, (1, 2))
    with pytest.raises(ValueError, match="got array"):
        settings.one_of("w", "k", np.array([1]), (1, 2))


def test_boolean_refuses_0_and_1_with_a_type_error():
    assert settings.boolean("SGD", "nesterov", np.bool_(True)) is True
    with pytest.raises(TypeError, match=r"^SGD: nesterov must be True or False, got 1$"):
        settings.boolean("SGD", "nesterov", 1)


@attrs.frozen
class Record:
    rate: float = attrs.field(validator=settings.validator(settings.fraction_right_open))
    width: int | None = attrs.field(default=None, validator=settings.validator(settings.positive_int,
                                                                               allow_none=True))
    smoothing: float = attrs.field(default=0.0, validator=settings.validator(settings.fraction_closed,
                                                                             name="label_smoothing"))


def test_the_attrs_validator_names_the_record_and_the_field():
    assert Record(0.5, 3).width == 3 and Record(0.0).width is None
    with pytest.raises(ValueError, match=r"^Record: rate must be a number in \[0, 1\), got 1$"):
        Record(1)
    with pytest.raises(ValueError, match=r"^Record: width must be a positive int or None, got 0$"):
        Record(0.5, 0)
    with pytest.raises(ValueError, match=r"^Record: label_smoothing must be a number in \[0, 1\], got 2$"):
        Record(0.5, smoothing=2)



LIBRARY = ("layers", "losses", "optim", "data", "estimators", "diagnostics")
# a check written by hand: a value refused for not being an int or a number (settings.is_int / is_real)
HAND_WRITTEN = re.compile(r"not isinstance\(\w+, (\(int, np\.integer\)|\(int, float[^)]*\)|numbers\.\w+)\)")


def test_no_library_module_writes_its_own_int_or_number_check():
    root = Path(__file__).resolve().parent.parent
    found = [f"{path.relative_to(root)}:{text[:match.start()].count(chr(10)) + 1}"
             for package in LIBRARY for path in sorted((root / package).rglob("*.py"))
             if path != root / "layers" / "settings.py"
             for text in [path.read_text()] for match in HAND_WRITTEN.finditer(text)]
    assert not found, f"use lamina.layers.settings instead of these copies: {found}"


def test_the_pattern_finds_the_copies_it_is_meant_for():
    copies = ["if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:",
              "if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v < 1:",
              "if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:",
              "if isinstance(s, bool) or not isinstance(s, (int, float, np.floating)) or s != s:"]
    assert all(HAND_WRITTEN.search(line) for line in copies)
