"""The library's components: the unit of installation, and of a deploy, in one table.

Shaped like micropython-lib's aioble, which installs by part (aioble-core, -central, -client,
... each a manifest that requires the core): a board gets only the components its config uses.
COMPONENTS below is the single source of
- the mip packages and frozen-build manifests, packages/<name>/package.json and manifest.py,
  and the root package.json (core + https), all written by
  `python -m kpnthings_tools.build --update-package-json`;
- the conditions kpnthings_tools.modules applies when it works out a config's deploy set: a lazy
  import of a component's module from core code counts only when its condition holds.

A component's modules are paths in lib/kpnthings without ".py", or fnmatch patterns of them.
Every module belongs to exactly one component: `problems()` names a module that belongs to none
(or to two), and the build writes no package file until it is fixed.

A config selects core, its transport's component, sensors-core and each driver its sensors'
types take in kpnthings.sensors' dispatch (read from the source, as the deploy reads it), and
field and deepsleep when its keys ask for them; then what those require.
tests/host/test_components.py checks that this union is exactly the set
kpnthings_tools.modules computes for the same config.
"""

import fnmatch

from .library_imports import PACKAGE, SENSORS_PACKAGE, import_graph

# -- the conditions: which configs select a component ------------------------------------------


def _transport(config):
    return config.get("transport") or "http"


def http_transport(config):
    """(holds, why) for the HTTPS component."""
    if _transport(config) == "http":
        scheme = str(config.get("url") or "https:").split(":", 1)[0].lower()
        return True, "transport " + scheme
    return False, "transport is %s, not http" % _transport(config)


def mqtt_transport(config):
    if _transport(config) == "mqtt":
        return True, "transport mqtt"
    return False, "transport is %s, not mqtt" % _transport(config)


def http_client_used(config):
    """(holds, why) for the HTTP client: the HTTPS uplink's, and the update download's."""
    holds, why = http_transport(config)
    if holds:
        return holds, why
    if config.get("update"):
        return True, "config has update (its download is over HTTP)"
    return False, why


def has_sensors(config):
    # Not "non-empty": config.validate imports kpnthings.sensors for any "sensors" key that is not
    # null, an empty list included, and a board without the package refuses that config.
    if config.get("sensors") is not None:
        return True, "config has a sensors list"
    return False, "config lists no sensors"


def previous_identities(config):
    # kpnthings.wiring sends an earlier identity's readings only over HTTP(S).
    if not config.get("previous_identities"):
        return False, "config lists no previous_identities"
    holds, why = http_transport(config)
    if not holds:
        return False, why
    return True, "config lists previous_identities"


def deep_sleep(config):
    # kpnthings.config keeps "sleep" set for "deep" only; "light" and no key are the same loop.
    if config.get("sleep") == "deep":
        return True, 'sleep is "deep"'
    return False, 'sleep is "light" (the default)'


def health_reports(config):
    # kpnthings.flush adds health records every health_every cycles (config.DEFAULTS: 60);
    # 0 or null turns them off, and then kpnthings.health is never imported.
    every = config.get("health_every", 60)
    if every:
        return True, "health_every is %s" % every
    return False, "health_every is %s: no health records" % every


def updates(config):
    if config.get("update"):
        return True, "config has update"
    return False, "config has no update"


# `when` for the two kinds of component that no condition function describes.
ALWAYS = "always"  # core: every config
SENSOR_TYPE = "sensor type"  # a driver: a config sensor whose type the dispatch sends to it
ON_REQUEST = "on request"  # nothing the firmware runs imports it: installed for your own code


class Component:
    """One installable part: `modules` (paths in lib/kpnthings without ".py", or patterns),
    `requires` (the components it imports from), `when` (ALWAYS, SENSOR_TYPE, ON_REQUEST or a
    condition function config -> (holds, why)) and `doc`, one line for users."""

    __slots__ = ("doc", "modules", "name", "requires", "when")

    def __init__(self, name, modules, when, doc, requires=("core",)):
        self.name = name
        self.modules = tuple(modules)
        self.when = when
        self.doc = doc
        self.requires = tuple(requires)

    def __repr__(self):
        return "Component(%s)" % self.name


def _driver(name, doc):
    return Component(
        "sensors-" + name, ("sensors/" + name,), SENSOR_TYPE, doc, requires=("sensors-core",)
    )


COMPONENTS = (
    Component(
        "core",
        (
            "__init__",
            "app",
            "wiring",
            "config",
            "auth",
            "clock",
            "compat",
            "backoff",
            "wifi",
            "watchdog",
            "status_led",  # every board's signal() imports it
            "device",
            "device_init",
            "flush",
            "flush_*",
            "batch",
            "outbox",
            "outbox_open",
            "outbox_read",
            "outbox_encode",
            "outbox_dead",
            "outbox_owner",
            "downlink",
            "downlink_spec",
            "downlink_apply",
            "senml_text",
            "senml_exact",
            "senml_check",
            "senml_decode",
            # Both transports: mqtt_transport answers with client's Result, and both dial
            # through dial and read and write through socket_io's SocketTransport.
            "client",
            "dial",
            "socket_io",
        ),
        ALWAYS,
        "the boot, the loop, the outbox and downlinks, which every config loads, with the "
        "dialer and the socket layer that both transports use",
        requires=(),
    ),
    Component(
        "http",
        ("http_client", "http_response", "http_chunked"),
        http_client_used,
        "the HTTP/1.1 client: connections kept alive, bounded responses, chunked answers",
    ),
    Component(
        "https",
        ("uplink",),
        http_transport,
        "the HTTPS uplink the loop keeps between cycles",
        requires=("core", "http"),
    ),
    Component(
        "mqtt",
        ("mqtt", "mqtt_*"),
        mqtt_transport,
        "MQTT 3.1.1 instead of HTTPS (config transport: mqtt)",
    ),
    Component(
        "sensors-core",
        ("sensors/__init__", "sensors/schema"),
        has_sensors,
        "the config's sensors list: its check, Readings, and the choice of driver",
    ),
    _driver("dht", "DHT22 and DHT11 (types dht22, dht11)"),
    _driver("ds18b20", "DS18B20 on 1-Wire (type ds18b20)"),
    _driver("bme280", "BME280 and BMP280 on I2C (types bme280, bmp280)"),
    _driver("analog", "an ADC pin, scaled (type analog)"),
    _driver("digital", "a digital input pin (type digital)"),
    _driver("counter", "a pulse counter on a pin (type counter)"),
    Component(
        "field",
        ("outbox_handover",),
        previous_identities,
        "field operations: an earlier identity's readings sent under it after a re-provisioning "
        "(config previous_identities, over HTTPS)",
    ),
    Component(
        "deepsleep",
        ("deepsleep",),
        deep_sleep,
        "deep sleep between cycles on an ESP32: one boot a cycle, a send every send_every_cycles"
        ' (config sleep: "deep")',
    ),
    Component(
        "health",
        ("health",),
        health_reports,
        "health records every health_every cycles and after each boot: heap, uptime, boot count, "
        "reset cause, outbox, Wi-Fi signal, firmware, last error (docs/health.md)",
    ),
    Component(
        "update",
        ("update_*",),
        updates,
        "signed updates with rollback: the version picked at boot, the offer polled, the "
        "release fetched, its ECDSA P-256 signature checked, the switch (config update)",
        requires=("core", "http"),
    ),
    Component(
        "senml",
        ("senml", "senml_encode"),
        ON_REQUEST,
        "the SenML Pack API for programs of your own; the firmware writes its packs with batch",
    ),
)

BY_NAME = {c.name: c for c in COMPONENTS}


# -- which component a module belongs to ---------------------------------------------------------


def _dotted(path):
    """A component's module path ("sensors/__init__", "mqtt_*") as a dotted module name pattern
    ("kpnthings.sensors", "kpnthings.mqtt_*")."""
    parts = path.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGE, *parts])


def module_name(rel):
    """A file relative to lib/ ("kpnthings/sensors/__init__.py") as its module name."""
    return _dotted(rel[: -len(".py")].split("/", 1)[1] if "/" in rel else "__init__")


def owners(name):
    """The components whose patterns match the dotted module `name`; exactly one when healthy."""
    return [c for c in COMPONENTS if any(fnmatch.fnmatchcase(name, _dotted(p)) for p in c.modules)]


def component_of(name):
    """The component of the dotted module `name` (the first whose patterns match), or None."""
    found = owners(name)
    return found[0] if found else None


def files(component, root=None):
    """The files of lib/ (relative to lib/, sorted) that belong to `component`, by name or
    Component."""
    component = BY_NAME[component] if isinstance(component, str) else component
    graph = import_graph(root)
    return sorted(rel for name, rel in graph.modules.items() if component_of(name) is component)


def problems(root=None):
    """What keeps the table from covering lib/kpnthings exactly: modules in no component or in
    two, patterns that match no module, and requires naming no component. Empty when healthy."""
    graph = import_graph(root)
    out = []
    for name, rel in sorted(graph.modules.items(), key=lambda item: item[1]):
        found = owners(name)
        if not found:
            out.append(
                "lib/%s belongs to no component: add it to COMPONENTS in "
                "tools/kpnthings_tools/components.py" % rel
            )
        elif len(found) > 1:
            out.append(
                "lib/%s belongs to %s: keep it in one" % (rel, " and ".join(c.name for c in found))
            )
    for c in COMPONENTS:
        for pattern in c.modules:
            if not any(fnmatch.fnmatchcase(name, _dotted(pattern)) for name in graph.modules):
                out.append("component %s: %r matches no module" % (c.name, pattern))
        for req in c.requires:
            if req not in BY_NAME:
                out.append("component %s requires %r, which is no component" % (c.name, req))
    return out


def required(names):
    """`names` and every component they require, in table order."""
    wanted = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(BY_NAME[name].requires)
    return [c.name for c in COMPONENTS if c.name in wanted]


# -- which components a config selects -----------------------------------------------------------


def sensor_types(config):
    """The "type" of every sensor the config lists, in order, without repeats."""
    out = []
    for entry in config.get("sensors") or ():
        kind = entry.get("type") if isinstance(entry, dict) else None
        if isinstance(kind, str) and kind not in out:
            out.append(kind)
    return out


def driver_types(root=None):
    """{driver component name: [(names, other)]}: the branches of kpnthings.sensors' dispatch
    that import a module of that component, as kpnthings_tools.library_imports reads them."""
    graph = import_graph(root)
    source = graph.sources.get(SENSORS_PACKAGE)
    out = {}
    for imp in source.imports if source is not None else ():
        comp = component_of(imp.target)
        if imp.types is not None and comp is not None and comp.when is SENSOR_TYPE:
            out.setdefault(comp.name, []).append(imp)
    return out


def selected(config, root=None):
    """{component name: why} for every component `config` selects, with what those require
    ("required by ..."), in table order."""
    why = {"core": "every config"}
    kinds = sensor_types(config)
    drivers = driver_types(root)
    for c in COMPONENTS:
        if callable(c.when):
            holds, reason = c.when(config)
            if holds:
                why[c.name] = reason
        elif c.when is SENSOR_TYPE:
            takes = [k for k in kinds if any(imp.takes(k) for imp in drivers.get(c.name, ()))]
            if takes:
                why[c.name] = "sensor type " + ", ".join(takes)
    for name in required(list(why)):
        if name not in why:
            users = [n for n in why if name in BY_NAME[n].requires]
            why[name] = "required by " + ", ".join(users)
    return {c.name: why[c.name] for c in COMPONENTS if c.name in why}


def selected_files(config, root=None):
    """The files (relative to lib/, sorted) of every component `config` selects."""
    out = []
    for name in selected(config, root):
        out += files(name, root)
    return sorted(out)
