"""The BME280 driver's integer compensation against Bosch's double-precision formulas
(BME280 datasheet BST-BME280-DS002, section 8.1; BMP280 BST-BMP280-DS001, section 8.1), over
the whole measuring range and many calibrations, not only the one worked example the portable
tests pin. The double versions are written out here independently of the driver."""

import importlib.util
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kpnthings.sensors import bme280

# Loaded by path: putting tests/fakes on sys.path would let its machine.py and network.py
# shadow the real (absent) modules for every other host test in the session.
for _name in ("sim_dht", "sim_onewire", "sim_i2c", "simbus"):  # simbus imports the other three
    _spec = importlib.util.spec_from_file_location(
        _name, Path(__file__).resolve().parents[1] / "fakes" / (_name + ".py")
    )
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules[_name] = _mod
    _spec.loader.exec_module(_mod)
simbus = sys.modules["simbus"]


def _calibration(overrides):
    cal = dict(simbus.BOSCH_EXAMPLE_CAL)
    cal.update(overrides)
    chip = simbus.SimBME280(cal=cal)  # through the registers, as the driver reads them
    return bme280.Calibration(bytes(chip.regs[0x88:0xA2]), bytes(chip.regs[0xE1:0xE8]))


def t_double(c, adc_t):
    var1 = (adc_t / 16384.0 - c.T1 / 1024.0) * c.T2
    var2 = ((adc_t / 131072.0 - c.T1 / 8192.0) * (adc_t / 131072.0 - c.T1 / 8192.0)) * c.T3
    return (var1 + var2) / 5120.0, int(var1 + var2)


def p_double(c, adc_p, t_fine):
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * c.P6 / 32768.0
    var2 = var2 + var1 * c.P5 * 2.0
    var2 = var2 / 4.0 + c.P4 * 65536.0
    var1 = (c.P3 * var1 * var1 / 524288.0 + c.P2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * c.P1
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = c.P9 * p * p / 2147483648.0
    var2 = p * c.P8 / 32768.0
    return p + (var1 + var2 + c.P7) / 16.0


def h_double(c, adc_h, t_fine):
    var_h = t_fine - 76800.0
    var_h = (adc_h - (c.H4 * 64.0 + c.H5 / 16384.0 * var_h)) * (
        c.H2 / 65536.0 * (1.0 + c.H6 / 67108864.0 * var_h * (1.0 + c.H3 / 67108864.0 * var_h))
    )
    var_h = var_h * (1.0 - c.H1 * var_h / 524288.0)
    return min(100.0, max(0.0, var_h))


# Trimming words vary from part to part around the example's; raw values span the ranges that
# compensate to the parts' operating range (-40..85 Cel, 300..1100 hPa).
trims = st.fixed_dictionaries(
    {
        "T1": st.integers(26000, 29000),
        "T2": st.integers(25000, 28000),
        "T3": st.integers(-1500, 50),
        "P1": st.integers(35000, 39000),
        "P2": st.integers(-11500, -10000),
        "P3": st.integers(2500, 3500),
        "P4": st.integers(2000, 9000),
        "P5": st.integers(-250, 250),
        "P6": st.integers(-10, 10),
        "H2": st.integers(300, 400),
        "H4": st.integers(250, 400),
        "H5": st.integers(0, 100),
    }
)


@settings(max_examples=400, deadline=None)
@given(trims, st.integers(380000, 660000))
def test_temperature_matches_the_double_formula(trim, adc_t):
    c = _calibration(trim)
    centi, t_fine = bme280.compensate_temperature(c, adc_t)
    t, t_fine_double = t_double(c, adc_t)
    assert abs(centi / 100 - t) <= 0.01
    # The integer version drops adc_T's 3 low bits first (adc_T >> 3): up to 7/8 * T2 / 2048,
    # about 12 units of t_fine (t_fine / 5120 = Cel, so 0.0025 Cel), plus a unit of rounding.
    assert abs(t_fine - t_fine_double) <= 16


@settings(max_examples=400, deadline=None)
@given(trims, st.integers(380000, 660000), st.integers(200000, 650000))
def test_pressure_matches_the_double_formula(trim, adc_t, adc_p):
    c = _calibration(trim)
    _, t_fine = bme280.compensate_temperature(c, adc_t)
    want = p_double(c, adc_p, t_fine)
    got = bme280.compensate_pressure(c, adc_p, t_fine) / 256
    assert abs(got - want) <= 0.1, (got, want)


@settings(max_examples=400, deadline=None)
@given(trims, st.integers(380000, 660000), st.integers(0, 65535))
def test_humidity_matches_the_double_formula(trim, adc_t, adc_h):
    c = _calibration(trim)
    _, t_fine = bme280.compensate_temperature(c, adc_t)
    got = bme280.compensate_humidity(c, adc_h, t_fine) / 1024
    want = h_double(c, adc_h, t_fine)
    assert 0.0 <= got <= 100.0
    assert abs(got - want) <= 0.02, (got, want)
