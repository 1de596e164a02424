"""The calculator builtin: arithmetic without eval."""

from __future__ import annotations

from tools.builtin.calculator import calculate


def test_arithmetic_with_parentheses_percentages_and_functions() -> None:
    assert calculate("(345 + 678) * 9") == "9207"
    assert calculate("2350 * 17.5 / 100") == "411.25"
    assert calculate("sqrt(144) + abs(-3)") == "15"


def test_a_caret_is_a_power_as_on_a_calculator_and_the_exponent_stays_bounded() -> None:
    assert calculate("2^20") == "1048576" == calculate("2 ** 20")
    assert calculate("2^3*2") == "16"
    assert calculate("2^10000").startswith("Error")


def test_what_is_not_arithmetic_is_an_error_not_an_evaluation() -> None:
    assert calculate("__import__('os').system('id')").startswith("Error")
    assert calculate("1 / 0").startswith("Error")
