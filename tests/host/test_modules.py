"""kpnthings_tools.modules: the library modules a config needs, worked out from the source.

On the real tree: an HTTPS config without sensors brings no MQTT, sensor or deep-sleep module;
an MQTT config brings the MQTT modules and only the HTTP code they import themselves; each
sensor type brings its own driver and no other, checked against the firmware's own dispatch run
on CPython. On small trees written here: a module added to lib is followed without any table
being touched, a lazy import of an optional module from core code counts only when its
condition holds, and a dynamic import the analysis cannot name makes the whole library go.
That the firmware really boots from these sets is tests/host/test_deploy_modules.py's job.
"""

import json
import re
from pathlib import Path

import pytest

from kpnthings_tools import build, modules

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib" / "kpnthings"

HTTPS = {
    "dvnuuid": "x",
    "secret": "y",
    "board": "esp32",
    "url": "https://prod.dm.kpnthings.com",
    "ca_file": "ca.der",
}
MQTT = dict(HTTPS, transport="mqtt", mqtt_host="broker.example", mqtt_tls=False)


def _set(config, root=None):
    return dict(modules.module_set(config, root))


def _driver_modules(chosen):
    return sorted(
        rel
        for rel in chosen
        if rel.startswith("kpnthings/sensors/")
        and rel not in ("kpnthings/sensors/__init__.py", "kpnthings/sensors/schema.py")
    )


def _imports_of(rel, name):
    """Whether lib/<rel> imports kpnthings.<name> anywhere (a plain text check, no ast)."""
    text = (ROOT / "lib" / rel).read_text()
    return re.search(r"from kpnthings import [^\n]*\b%s\b|kpnthings\.%s\b" % (name, name), text)


# -- the real tree ---------------------------------------------------------------------------------


def test_every_module_in_the_set_has_a_reason_and_exists():
    for config in (HTTPS, MQTT, dict(HTTPS, sensors=[{"type": "dht22", "pin": 4}])):
        chosen = modules.module_set(config)
        assert chosen == sorted(chosen)
        for rel, why in chosen:
            assert (ROOT / "lib" / rel).is_file(), rel
            assert why and isinstance(why, str), rel
        left = dict(modules.left_out(config))
        # Together they are the whole library, each module once.
        assert sorted(set(dict(chosen)) | set(left)) == build.library_sources()
        assert not set(dict(chosen)) & set(left)


def test_https_without_sensors_brings_no_mqtt_or_sensor_module():
    chosen = _set(HTTPS)
    unwanted = [rel for rel in chosen if re.match(r"kpnthings/(mqtt|sensors)", rel)]
    assert unwanted == []
    for rel in ("__init__", "app", "wiring", "config", "device", "client", "http_client"):
        assert "kpnthings/%s.py" % rel in chosen, rel
    assert chosen["kpnthings/app.py"] == "imported by firmware/main.py"
    # The https component comes in by the transport; uplink.Uplink makes the (core) Client.
    assert chosen["kpnthings/uplink.py"] == "transport https (imported by kpnthings.wiring)"
    assert chosen["kpnthings/client.py"] == "imported by kpnthings.uplink"
    # Plain http to a local emulator needs the very same modules.
    assert _set(dict(HTTPS, url="http://127.0.0.1:8080", ca_file=None)).keys() == chosen.keys()
    left = dict(modules.left_out(HTTPS))
    assert left["kpnthings/mqtt_transport.py"] == "transport is http, not mqtt"
    assert left["kpnthings/sensors/__init__.py"] == "config lists no sensors"


def test_mqtt_brings_its_modules_and_http_code_only_where_mqtt_imports_it():
    chosen = _set(MQTT)
    for rel in ("mqtt", "mqtt_transport", "mqtt_config"):
        assert "kpnthings/%s.py" % rel in chosen, rel
    assert chosen["kpnthings/mqtt_transport.py"] == "transport mqtt (imported by kpnthings.wiring)"
    assert not any(rel.startswith("kpnthings/sensors") for rel in chosen)
    # The HTTPS uplink and the HTTP client are HTTP's alone (the https and http components of
    # kpnthings_tools.components): an MQTT board goes without them, and shares only the socket
    # layer (kpnthings.socket_io) and the dialer.
    left = dict(modules.left_out(MQTT))
    assert left["kpnthings/uplink.py"] == "transport is mqtt, not http"
    assert left["kpnthings/http_client.py"] == "transport is mqtt, not http"
    for rel in ("http_response", "http_chunked"):
        assert left["kpnthings/%s.py" % rel] == "only imported by modules this config leaves out"
    assert "kpnthings/socket_io.py" in chosen and "kpnthings/dial.py" in chosen
    # wiring's `from kpnthings.client import Client` (the HTTPS branch) brings nothing here: the
    # HTTP modules come only if the MQTT code imports them itself (today it shares the client's
    # result type and http_client's socket layer), and the reason says which module does.
    mqtt_files = [r for r in build.library_sources() if re.match(r"kpnthings/mqtt\w*\.py$", r)]
    for name in ("client", "http_client"):
        rel = "kpnthings/%s.py" % name
        users = [r for r in mqtt_files if _imports_of(r, name)]
        assert (rel in chosen) == bool(users), (rel, users)
        if rel in chosen:  # the reason names a module of the set that imports it
            by = re.fullmatch(r"imported by kpnthings\.(\w+)", chosen[rel])
            assert by, chosen[rel]
            importer = "kpnthings/%s.py" % by.group(1)
            assert importer in chosen and _imports_of(importer, name), chosen[rel]


def test_the_handover_of_earlier_identities_goes_only_with_previous_identities_over_http():
    # Issue 19: kpnthings.outbox_owner (which wiring loads, the same way, to open the outbox)
    # loads it by a name it spells only in an __import__ (so that it interns no name for it);
    # the analysis follows that import all the same.
    rel = "kpnthings/outbox_handover.py"
    olds = [{"dvnuuid": "a", "secret": "b"}]
    assert _set(dict(HTTPS, previous_identities=olds))[rel] == (
        "config lists previous_identities (imported by kpnthings.outbox_owner)"
    )
    left = dict(modules.left_out(HTTPS))
    assert left[rel] == "config lists no previous_identities"
    left = dict(modules.left_out(dict(MQTT, previous_identities=olds)))
    assert left[rel] == "transport is mqtt, not http"


def test_each_sensor_type_brings_its_driver_and_no_other():
    from kpnthings import sensors  # the firmware's own dispatch, run on CPython

    assert sensors.types(), "no sensor types?"
    for kind in sensors.types():
        config = dict(HTTPS, sensors=[{"type": kind, "pin": 4}])
        chosen = _set(config)
        expected = sensors._driver_class(kind).__module__.replace(".", "/") + ".py"
        assert _driver_modules(chosen) == [expected], kind
        assert chosen[expected] == "sensor type %s (imported by kpnthings.sensors)" % kind
        assert chosen["kpnthings/sensors/schema.py"] == "imported by kpnthings.sensors"


def test_the_sensors_example_brings_exactly_the_drivers_it_names():
    from kpnthings import sensors

    example = json.loads((ROOT / "examples" / "sensors.json").read_text())
    config = dict(HTTPS, **example)
    wanted = sorted(
        set(
            sensors._driver_class(e["type"]).__module__.replace(".", "/") + ".py"
            for e in example["sensors"]
        )
    )
    assert _driver_modules(_set(config)) == wanted


def test_an_empty_sensors_list_brings_the_package_but_no_driver():
    # config.validate imports kpnthings.sensors for any sensors key that is not null.
    chosen = _set(dict(HTTPS, sensors=[]))
    assert "kpnthings/sensors/__init__.py" in chosen
    assert _driver_modules(chosen) == []


@pytest.mark.parametrize("board", sorted(build.BOARD_ARCH))
def test_status_led_comes_with_the_boards_whose_signal_imports_it(board):
    text = (ROOT / "boards" / (board + ".py")).read_text()
    imports_it = re.search(r"from kpnthings import [^\n]*\bstatus_led\b", text)
    chosen = _set(dict(HTTPS, board=board))
    assert ("kpnthings/status_led.py" in chosen) == bool(imports_it)
    if imports_it:
        assert chosen["kpnthings/status_led.py"] == "imported by boards.%s" % board


def test_the_library_names_every_module_it_imports():
    # A computed import (other than through a helper called with a constant) would make every
    # deploy carry the whole library; config._optional_module("mqtt") is resolved, for one.
    for board in sorted(build.BOARD_ARCH):
        assert modules.unresolved_imports(board=board) == []
    chosen = _set(MQTT)
    assert chosen["kpnthings/mqtt_config.py"] == "transport mqtt (imported by kpnthings.config)"


# -- small trees: the rules themselves -------------------------------------------------------------


def _tree(tmp_path, files):
    """A checkout with firmware/main.py, a unix board and the given lib/kpnthings files."""
    base = {
        "firmware/main.py": "from kpnthings import app\n\napp.main()\n",
        "firmware/boot.py": "import gc\n",
        "boards/__init__.py": "",
        "boards/unix.py": "def signal(outcome):\n    pass\n",
        "lib/kpnthings/__init__.py": "__version__ = '0'\n",
    }
    base.update(files)
    for rel, text in base.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


UNIX = {"board": "unix", "url": "http://127.0.0.1:1"}


def test_a_module_added_to_lib_is_followed_without_touching_any_table(tmp_path):
    root = _tree(
        tmp_path,
        {
            "lib/kpnthings/app.py": "def main():\n    from kpnthings import brand_new\n",
            "lib/kpnthings/brand_new.py": "from . import helper\nfrom .pkg.deep import thing\n",
            "lib/kpnthings/helper.py": "import kpnthings.leaf\n",
            "lib/kpnthings/leaf.py": "",
            "lib/kpnthings/pkg/__init__.py": "",
            "lib/kpnthings/pkg/deep.py": "thing = 1\n",
            "lib/kpnthings/orphan.py": "from kpnthings import helper\n",
        },
    )
    chosen = _set(UNIX, root)
    assert chosen == {
        "kpnthings/__init__.py": "imported by firmware/main.py",
        "kpnthings/app.py": "imported by firmware/main.py",
        "kpnthings/brand_new.py": "imported by kpnthings.app",
        "kpnthings/helper.py": "imported by kpnthings.brand_new",
        "kpnthings/leaf.py": "imported by kpnthings.helper",
        "kpnthings/pkg/__init__.py": "package of kpnthings.pkg.deep",
        "kpnthings/pkg/deep.py": "imported by kpnthings.brand_new",
    }
    assert modules.left_out(UNIX, root) == [("kpnthings/orphan.py", "nothing imports it")]


def test_optional_modules_follow_their_condition_from_lazy_core_imports(tmp_path):
    root = _tree(
        tmp_path,
        {
            "lib/kpnthings/app.py": (
                "from kpnthings import shared\n"
                "def main(cfg):\n"
                "    if cfg['transport'] == 'mqtt':\n"
                "        from kpnthings import mqtt_transport\n"
                "    else:\n"
                "        from kpnthings.uplink import Uplink\n"
                "    from kpnthings import config\n"
            ),
            "lib/kpnthings/config.py": (
                "def _optional_module(name):\n"
                "    return __import__('kpnthings.' + name, None, None, (name,))\n"
                "def check(cfg):\n"
                "    if cfg.get('sensors') is not None:\n"
                "        _optional_module('sensors')\n"
            ),
            # MQTT with its own socket code: no HTTP module at all. The HTTPS uplink is of the
            # https component; the client it makes is core, and comes only through it here.
            "lib/kpnthings/uplink.py": "def make():\n    from kpnthings import client\n",
            "lib/kpnthings/mqtt_transport.py": "from kpnthings import mqtt\n",
            "lib/kpnthings/mqtt.py": "def connect():\n    from kpnthings import net\n",
            "lib/kpnthings/client.py": "def send():\n    from kpnthings import http_client\n",
            "lib/kpnthings/http_client.py": "from kpnthings import net\n",
            "lib/kpnthings/net.py": "",
            "lib/kpnthings/shared.py": "",
            "lib/kpnthings/sensors/__init__.py": (
                "def _driver(kind):\n"
                "    if kind == 'a1' or kind == 'a2':\n"
                "        from kpnthings.sensors import a as mod\n"
                "    elif kind in ('b',):\n"
                "        from kpnthings.sensors import b as mod\n"
                "    else:\n"
                "        from kpnthings.sensors import c as mod\n"
                "    return mod\n"
            ),
            "lib/kpnthings/sensors/a.py": "from kpnthings.sensors import bus\n",
            "lib/kpnthings/sensors/b.py": "",
            "lib/kpnthings/sensors/c.py": "",
            "lib/kpnthings/sensors/bus.py": "",
        },
    )
    core = ["__init__", "app", "config", "shared", "net"]

    def names(config):
        return sorted(rel[len("kpnthings/") : -len(".py")] for rel in _set(config, root))

    http = dict(UNIX, transport="http")
    assert names(http) == sorted(core + ["uplink", "client", "http_client"])
    mqtt = dict(UNIX, transport="mqtt")
    assert names(mqtt) == sorted(core + ["mqtt", "mqtt_transport"])
    left = dict(modules.left_out(mqtt, root))
    assert left["kpnthings/uplink.py"] == "transport is mqtt, not http"
    assert left["kpnthings/client.py"] == "only imported by modules this config leaves out"
    with_a2 = dict(http, sensors=[{"type": "a2"}])
    assert "sensors/a" in names(with_a2) and "sensors/bus" in names(with_a2)
    assert "sensors/b" not in names(with_a2) and "sensors/c" not in names(with_a2)
    with_b_and_x = dict(http, sensors=[{"type": "b"}, {"type": "x"}])
    picked = [n for n in names(with_b_and_x) if n.startswith("sensors/")]
    assert picked == ["sensors/__init__", "sensors/b", "sensors/c"]  # x takes the else branch
    assert _set(with_b_and_x, root)["kpnthings/sensors/c.py"] == (
        "sensor type x (imported by kpnthings.sensors)"
    )
    assert _set(with_b_and_x, root)["kpnthings/sensors/__init__.py"] == (
        "config has a sensors list (imported by kpnthings.config)"
    )


def test_a_top_level_import_of_an_optional_module_always_counts(tmp_path):
    # Module level runs whenever the module loads: leaving the target out would break the boot.
    root = _tree(
        tmp_path,
        {
            "lib/kpnthings/app.py": "from kpnthings.client import RESULT\n",
            "lib/kpnthings/client.py": "RESULT = 1\n",
        },
    )
    chosen = _set(dict(UNIX, transport="mqtt"), root)
    assert chosen["kpnthings/client.py"] == "imported by kpnthings.app"


def test_a_computed_import_makes_the_whole_library_go(tmp_path):
    root = _tree(
        tmp_path,
        {
            "lib/kpnthings/app.py": (
                "def main(cfg):\n    __import__('kpnthings.' + cfg['plugin'])\n"
            ),
            "lib/kpnthings/plugin_a.py": "",
            "lib/kpnthings/mqtt.py": "",
        },
    )
    [(where, line, code)] = modules.unresolved_imports(root, board="unix")
    assert where == "kpnthings.app" and line == 2 and "cfg['plugin']" in code
    chosen = _set(UNIX, root)
    assert sorted(chosen) == build.library_sources(root)
    assert chosen["kpnthings/plugin_a.py"] == "dynamic import in kpnthings.app, line 2"
