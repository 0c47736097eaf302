"""Number spelling: every form Upbit's wire uses (upbit-api.md 2.11, 3.9)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from upbit_pipeline.upbit.simulator import encode as E
from upbit_pipeline.upbit.simulator.market import SCALE, tick_units


def test_fixed_spellings() -> None:
    assert E.fixed8(103_600_000 * SCALE) == "103600000.00000000"
    assert E.fixed8(400_000) == "0.00400000"
    assert E.fixed8(0) == "0E-8"
    assert E.fixed8(-1_043_000 * SCALE) == "-1043000.00000000"
    assert E.fixed16(86_074_353_071_000) == "860743.5307100000000000"


def test_java_double_spellings() -> None:
    assert E.jdouble(116_539_000 * SCALE) == "1.16539E8"
    assert E.jdouble(79_276) == "7.9276E-4"
    assert E.jdouble(50_000) == "5.0E-4"
    assert E.jdouble(6_288_509) == "0.06288509"
    assert E.jdouble(116_606 * SCALE) == "116606.0"
    assert E.sdouble(148_500_000 * SCALE) == "148500000.0"
    assert E.sdouble(6_026_520) == "0.0602652"
    assert E.sdouble(79_276) == "7.9276E-4"
    assert E.plain(116_233_000 * SCALE) == "116233000"
    assert E.plain(6_146_000) == "0.06146"


def test_rates() -> None:
    assert E.rate10(1_043_000, 102_417_000) == "0.0101838562"
    assert E.rate10(-1_043_000, 102_417_000) == "-0.0101838562"
    assert E.rate10(0, 5) == "0"


@given(st.integers(min_value=1, max_value=10**17))
def test_jdouble_round_trips(units: int) -> None:
    assert (
        float(E.jdouble(units)) == float(units) / SCALE
        or abs(float(E.jdouble(units)) - units / SCALE) <= 1e-15 * units / SCALE
    )


def test_krw_tick_table() -> None:
    assert tick_units(140_000_000 * SCALE) == 1_000 * SCALE
    assert tick_units(1_500_000 * SCALE) == 1_000 * SCALE
    assert tick_units(700_000 * SCALE) == 500 * SCALE
    assert tick_units(250_000 * SCALE) == 100 * SCALE
    assert tick_units(60_000 * SCALE) == 50 * SCALE
    assert tick_units(30_000 * SCALE) == 10 * SCALE
    assert tick_units(6_000 * SCALE) == 5 * SCALE
    assert tick_units(4_000 * SCALE) == SCALE
    assert tick_units(300 * SCALE) == SCALE
    assert tick_units(50 * SCALE) == SCALE // 100
    assert tick_units(5 * SCALE) == SCALE // 1000
