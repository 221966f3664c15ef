"""A board file on the host, for the config check: boards/<board>.py loaded for its pin map, the
pin rules beside it (boards/<board>_pins.py, as kpnthings.wiring loads them at boot), and the
warnings about pins that are free on some modules of a board only. kpnthings_tools.config_check
applies them; `kpnthings deploy` and `new-device` print the warnings.
"""

from pathlib import Path

from . import build, sensors_check


def _is_identifier(name):
    for c in name:
        if not (c == "_" or "a" <= c <= "z" or "0" <= c <= "9"):
            return False
    return not ("0" <= name[0] <= "9")


def board_module(board, root=None):
    """boards/<board>.py loaded on the host for its pin map, or None where there is no such
    file or it needs the device to load (its sensors import lazily)."""
    if not board or not _is_identifier(str(board)):
        return None
    root = Path(root) if root else build.repo_root()
    return _load_board_file(root / "boards" / (board + ".py"))


def _load_board_file(src):
    import importlib.util

    if not src.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_kpnthings_board_" + src.stem, src)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # a board file that needs the device: skip the pin checks
        return None
    return module


def pin_rules(board):
    """The pin rules beside a board file that board_module loaded (boards/<board>_pins.py, as
    kpnthings.wiring loads them at boot), or None: the board has none, or is not a file."""
    path = getattr(board, "__file__", None)
    if not path:
        return None
    path = Path(path)
    return _load_board_file(path.with_name(path.stem + "_pins.py"))


def pin_warnings(cfg, board):
    """Lines about pins that work on some modules of the board only (its rules' WARN: GPIO16/17,
    the PSRAM of ESP32 WROVER modules), for a config `validate` accepted; [] for most."""
    rules = pin_rules(board)
    if rules is None:
        return []
    out = []
    for index, entry in enumerate(cfg.get("sensors") or ()):
        for field, pin in sensors_check.pins_of(entry):
            if pin in rules.WARN:
                out.append(
                    'sensors[%d] (%s): field "%s": pin %r may not be free: %s'
                    % (index, entry["type"], field, pin, rules.WARN[pin])
                )
    actuators = cfg.get("actuators")
    if actuators is None:
        actuators = getattr(board, "ACTUATORS", None) or {}
    for name in sorted(actuators):
        pin = actuators[name]["pin"]
        if pin in rules.WARN:
            out.append(
                "actuators.%s.pin: pin %r may not be free: %s" % (name, pin, rules.WARN[pin])
            )
    return out
