"""The component table (kpnthings_tools.components) against the library and the deploy.

Every module of lib/kpnthings belongs to exactly one component, so a module added without one
fails here (and stops `--update-package-json`). And for every example config, HTTPS and MQTT
configs, one with every sensor type and each feature that selects a component, on every board,
the set kpnthings_tools.modules computes for `kpnthings deploy` is exactly the union of the
components the config selects: what mip installs by component is what a deploy copies.
"""

import json
import shutil
from pathlib import Path

import pytest

from kpnthings_tools import build, components, modules

ROOT = Path(__file__).resolve().parents[2]

HTTPS = {
    "dvnuuid": "x",
    "secret": "y",
    "board": "esp32",
    "url": "https://prod.dm.kpnthings.com",
    "ca_file": "ca.der",
}
MQTT = dict(HTTPS, transport="mqtt", mqtt_host="broker.example", mqtt_tls=False)
OLDS = [{"dvnuuid": "a", "secret": "b"}]


UPDATE = {"url": "https://updates.example/offer", "key": "update_key.pub"}


def _every_sensor_type():
    from kpnthings import sensors  # the firmware's own list, run on CPython

    return [{"type": kind, "pin": 4} for kind in sensors.types()]


def _configs():
    out = {
        "https": HTTPS,
        "http-local": dict(HTTPS, url="http://127.0.0.1:8080", ca_file=None),
        "mqtt": MQTT,
        "mqtt-tls": dict(MQTT, mqtt_tls=True),
        "https-every-sensor-type": dict(HTTPS, sensors=_every_sensor_type()),
        "mqtt-every-sensor-type": dict(MQTT, sensors=_every_sensor_type()),
        "https-empty-sensors": dict(HTTPS, sensors=[]),
        "https-previous-identities": dict(HTTPS, previous_identities=OLDS),
        "mqtt-previous-identities": dict(MQTT, previous_identities=OLDS),
        "https-deep-sleep": dict(HTTPS, sleep="deep", send_every_cycles=10),
        "mqtt-deep-sleep": dict(MQTT, sleep="deep"),
        "https-light-sleep": dict(HTTPS, sleep="light"),
        "https-health-off": dict(HTTPS, health_every=0),
        "mqtt-health-null": dict(MQTT, health_every=None),
        "https-health-every-5": dict(HTTPS, health_every=5),
        "https-update": dict(HTTPS, update=UPDATE),
        "mqtt-update": dict(MQTT, update=UPDATE),
    }
    for kind in [e["type"] for e in _every_sensor_type()]:
        out["https-" + kind] = dict(HTTPS, sensors=[{"type": kind, "pin": 4}])
    for path in sorted((ROOT / "examples").glob("*.json")):
        example = json.loads(path.read_text())
        out["example-%s-https" % path.stem] = dict(HTTPS, **example)
        out["example-%s-mqtt" % path.stem] = dict(MQTT, **example)
    return out


CONFIGS = _configs()
BOARDS = sorted(build.BOARD_ARCH)


def test_every_library_module_belongs_to_exactly_one_component():
    assert components.problems() == []
    for rel in build.library_sources():
        found = components.owners(components.module_name(rel))
        assert len(found) == 1, (rel, found)


def test_a_module_without_a_component_is_named(tmp_path):
    shutil.copytree(
        ROOT / "lib" / "kpnthings",
        tmp_path / "lib" / "kpnthings",
        ignore=shutil.ignore_patterns("__pycache__", "*.mpy"),
    )
    (tmp_path / "lib" / "kpnthings" / "brand_new.py").write_text("X = 1\n")
    (tmp_path / "lib" / "kpnthings" / "sensors" / "sht31.py").write_text("X = 1\n")
    assert components.problems(tmp_path) == [
        "lib/kpnthings/brand_new.py belongs to no component: add it to COMPONENTS in "
        "tools/kpnthings_tools/components.py",
        "lib/kpnthings/sensors/sht31.py belongs to no component: add it to COMPONENTS in "
        "tools/kpnthings_tools/components.py",
    ]


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_deploy_set_is_the_union_of_the_selected_components(name, board):
    config = dict(CONFIGS[name], board=board)
    chosen = dict(modules.module_set(config))
    union = set(components.selected_files(config))
    picked = components.selected(config)
    extra = {rel: chosen[rel] for rel in sorted(set(chosen) - union)}
    missing = {rel: components.component_of(components.module_name(rel)).name for rel in union}
    missing = {rel: comp for rel, comp in missing.items() if rel not in chosen}
    assert not extra and not missing, (
        "components %s; deployed but in no selected component: %s; in a selected component but "
        "not deployed: %s" % (picked, extra, missing)
    )


def test_each_sensor_type_selects_the_component_of_the_driver_the_firmware_picks():
    from kpnthings import sensors

    for entry in _every_sensor_type():
        kind = entry["type"]
        module = sensors._driver_class(kind).__module__
        picked = components.selected(dict(HTTPS, sensors=[entry]))
        drivers = [n for n in picked if components.BY_NAME[n].when is components.SENSOR_TYPE]
        assert drivers == [components.component_of(module).name], kind
        assert picked["sensors-core"] == "config has a sensors list", kind


def test_the_configs_above_select_every_component_a_config_can_select():
    # So the union test covers every component's condition; the ones installed on request
    # (nothing the firmware runs imports them) are never selected nor deployed.
    seen = set()
    for config in CONFIGS.values():
        seen |= set(components.selected(config))
    on_request = {c.name for c in components.COMPONENTS if c.when is components.ON_REQUEST}
    assert seen == {c.name for c in components.COMPONENTS} - on_request
    assert on_request == {"senml"}


def test_what_selects_a_component_reads_as_a_reason():
    picked = components.selected(dict(MQTT, sensors=[{"type": "dht11", "pin": 4}]))
    assert picked == {
        "core": "every config",
        "mqtt": "transport mqtt",
        "sensors-core": "config has a sensors list",
        "sensors-dht": "sensor type dht11",
        "health": "health_every is 60",
    }
    picked = components.selected(dict(HTTPS, sleep="deep"))
    assert picked["deepsleep"] == 'sleep is "deep"'
    for light in (HTTPS, dict(HTTPS, sleep="light")):
        assert "deepsleep" not in components.selected(light)
        assert "kpnthings/deepsleep.py" not in [p for p, _ in modules.module_set(light)]
    deep = [p for p, _ in modules.module_set(dict(HTTPS, sleep="deep"))]
    assert "kpnthings/deepsleep.py" in deep
    picked = components.selected(dict(HTTPS, previous_identities=OLDS))
    assert picked["field"] == "config lists previous_identities"
    assert "field" not in components.selected(dict(MQTT, previous_identities=OLDS))


def test_health_off_deploys_none_of_its_code():
    # health_every 0 or null: kpnthings.health is neither selected nor in the deploy set.
    for config in (dict(HTTPS, health_every=0), dict(MQTT, health_every=None)):
        assert "health" not in components.selected(config)
        paths = [path for path, _ in modules.module_set(config)]
        assert "kpnthings/health.py" not in paths
        assert "kpnthings/flush.py" in paths
    paths = [path for path, _ in modules.module_set(dict(HTTPS, health_every=5))]
    assert "kpnthings/health.py" in paths
