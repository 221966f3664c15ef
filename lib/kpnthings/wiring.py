"""Boot-time wiring: config.json -> board, transport, actuators, outbox, Wi-Fi, clock, Device.

Used once per boot by kpnthings.app, which unloads this module (and kpnthings.config) before
the loop starts, so none of it holds heap while the device runs. The same code runs on an
ESP32, a Pico W and the MicroPython unix port with "board": "unix" (fake machine/network from
tests/fakes, Wi-Fi skipped, config path taken from the KPN_CONFIG environment variable). A bad
config stops the boot with one line naming the field (never the secret).
The outbox's opening (its folder, its owner) is kpnthings.outbox_owner's, loaded for
make_outbox only.
"""

from kpnthings.compat import const
from kpnthings.config import ConfigError  # kept when the config module is unloaded

CONFIG_PATH = "config.json"
# Total time to wait for a trusted Wi-Fi link at boot; each step inside is far shorter, and
# the loop keeps going (readings queue up) if the network is not there yet.
_WIFI_BOOT_WAIT_MS = const(20000)


class BootFailed(Exception):
    """The config is unusable; the reason has been logged already."""


def _config_path():
    import os

    getenv = getattr(os, "getenv", None)  # the unix port and CPython have it, boards do not
    path = getenv("KPN_CONFIG") if getenv is not None else None
    return path or CONFIG_PATH


def _dirname(path):
    i = path.rfind("/")
    return path[:i] if i > 0 else ("/" if i == 0 else "")


def load_board(name):
    """The board module: boards.<name> (a package, so boards.esp32 never hides the built-in
    esp32 module), or a flat <name> module as the host test paths provide."""
    mod = None
    try:
        mod = getattr(__import__("boards." + name), name, None)
    except ImportError:
        pass
    if mod is None:
        try:
            mod = __import__(name)
        except ImportError:
            mod = None
    # A built-in module of the same name (esp32, rp2) is not a board definition.
    if mod is None or not hasattr(mod, "read_sensors"):
        raise ConfigError("board: no board definition %r on this device" % name)
    return mod


def configure(path, log):
    """(config, board) from the file at `path`; ConfigError names the field."""
    from kpnthings import config

    raw = config.load_config(path)
    name = raw.get("board")
    if not isinstance(name, str) or not name:
        config.validate(raw)  # raises, naming the first bad field (board at the latest)
    # The board decides what else is required (Wi-Fi) and which pins exist, so it comes first.
    board = load_board(name)
    # Its pin rules, where it has any (boards/esp32_pins.py), for this check only: the board
    # hands them over unregistered, so they are garbage once it is done.
    rules = getattr(board, "pin_rules", None)
    cfg = config.validate(raw, board, rules() if rules is not None else None)
    for key in config.unknown_keys(raw):
        log("[boot] config: ignoring unknown key %r" % key)
    return cfg, board


def _ca_paths(cfg):
    """The paths of ca_file and of each of ca_files, relative to config.json (None without
    any). Only their names are kept: kpnthings.dial reads the files whenever it makes a TLS
    context, so no CA certificate takes heap between connections."""
    base = _dirname(_config_path())
    paths = []
    key = "ca_file"
    for path in [cfg[key]] + (cfg.get("ca_files") or []):
        if path:
            if base and not path.startswith("/"):
                path = base.rstrip("/") + "/" + path  # relative to config.json, as expected
            try:
                open(path, "rb").close()
            except OSError:
                raise ConfigError("%s: cannot read %s" % (key, path)) from None
            paths.append(path)
        key = "ca_files"
    return paths or None


def make_transport(cfg):
    """The uplink: HTTPS (or HTTP) Client, or MQTT when config says transport "mqtt"."""
    cadata = _ca_paths(cfg)
    try:
        if cfg["transport"] == "mqtt":
            from kpnthings import mqtt_transport

            return mqtt_transport.MQTTTransport(cfg, cadata=cadata)
        from kpnthings.uplink import Uplink

        return Uplink(cfg, cadata)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _warn_transport(cfg, log):
    if cfg["tls_insecure"]:
        log(
            "WARNING: tls_insecure is true: the server certificate is NOT verified, so anyone on"
            " the network path can read and forge this device's traffic. Set ca_file instead."
        )
    url = cfg["url"]
    if cfg["transport"] == "http" and url.startswith("http://"):
        host = url[7:].split("/", 1)[0].split(":", 1)[0]
        if host not in ("127.0.0.1", "localhost"):
            log("WARNING: url is plain http://: readings and downlinks travel unencrypted.")


def make_reader(cfg, board):
    """The readings source: the board's own sensors plus the ones config.json lists."""
    if not cfg.get("sensors"):
        return board
    from kpnthings import sensors

    return sensors.Readings(board, sensors.build(cfg["sensors"], board))


def make_outbox(cfg, log, transport=None, feed=None, link_ready=None):
    """The persistent outbox, beside config.json, or None if this firmware has none: its folder,
    its owner, one another identity filled moved aside (kpnthings.outbox_owner, loaded for this
    call only)."""
    from kpnthings import unload

    try:
        return __import__("kpnthings.outbox_owner", None, None, ("make_outbox",)).make_outbox(
            cfg, log, transport, feed, link_ready
        )
    finally:
        unload("outbox_owner")


def connect_wifi(cfg, feed, log):
    """Bring Wi-Fi up, waiting at most _WIFI_BOOT_WAIT_MS; returns the supervisor (or None)."""
    from kpnthings import wifi

    link = wifi.WiFi(cfg["wifi_ssid"], cfg["wifi_password"])
    log("[wifi] connecting to %r" % cfg["wifi_ssid"])
    if link.wait(_WIFI_BOOT_WAIT_MS, feed):
        log("[wifi] up, ip %s" % link.ip())
    else:
        log(
            "[wifi] no link after %d s; readings queue until it comes"
            % (_WIFI_BOOT_WAIT_MS // 1000)
        )
    return link


def _build(path, log):
    from kpnthings.downlink import Actuators

    cfg, board = configure(path, log)
    spec = cfg["actuators"] if cfg["actuators"] is not None else board.ACTUATORS
    pins = getattr(board, "OUTPUT_PINS", getattr(board, "PINS", None))
    try:
        actuators = Actuators(spec, valid_pins=pins)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    # The checks are done: their code goes now, before the objects the loop keeps for good are
    # made, so those fill the heap from the bottom up instead of around the checks' holes.
    from kpnthings import unload

    unload("config", "downlink_spec", "mqtt_config")
    transport = make_transport(cfg)
    reader = make_reader(cfg, board)
    from kpnthings.watchdog import Watchdog

    try:
        watchdog = Watchdog(cfg.get("wdt_ms"))
    except ValueError as e:
        raise ConfigError("wdt_ms: %s" % e) from None
    return cfg, board, actuators, transport, reader, watchdog


def _scrubbed(msg, path):
    # Errors raised outside config.validate (board, ca_file) quote the value, and a secret
    # pasted into such a field must not reach the log either.
    from kpnthings import config

    try:
        return config.scrub(msg, config.load_config(path))
    except config.ConfigError:
        return msg


def boot(log):
    """Everything the loop needs, as (Device, transport); BootFailed after logging a bad config."""
    from kpnthings import __version__

    path = _config_path()
    try:
        cfg, board, actuators, transport, reader, watchdog = _build(path, log)
    except ConfigError as e:
        log("config error (%s): %s" % (path, _scrubbed(str(e), path)))
        raise BootFailed() from None

    if cfg["transport"] == "mqtt":
        where = "mqtt %s:%s" % (cfg["mqtt_host"], cfg["mqtt_port"])
    else:
        where = cfg["url"]
    log(
        "[boot] kpnthings %s, board %s, device %s, %s"
        % (__version__, cfg["board"], cfg["dvnuuid"], where)
    )
    _warn_transport(cfg, log)
    feed = watchdog if watchdog.enabled else None  # callable: it feeds; ms_left() for the flush

    link = None
    from kpnthings.clock import Clock, clock_checker

    # The board knows best (a simulated Wi-Fi board on the host says False); else Clock decides.
    clock = Clock(trusted=getattr(board, "CLOCK_TRUSTED", None))
    deep = None
    if cfg.get("sleep"):  # "deep" (kpnthings.config keeps the key set for deep only)
        # Named by a string this long, the module costs a light config no interned name.
        deep = __import__("kpnthings.deepsleep", None, None, ("Device",))
        deep.configure(cfg, clock, log)  # what the last sleep kept: the clock's word among it
    # An RTC that kept its time through the reset (the board says which resets keep it: an
    # ESP32's deep sleep, watchdog or soft reset; an rp2 restarts it at every boot) is believed
    # until NTP answers, if it shows a time at or after the build's day (clock.MIN_VALID).
    kept = getattr(board, "rtc_kept", None)
    if kept is not None and not clock.trusted and kept() and clock.trust_rtc():
        log("[clock] the RTC kept its time through the reset: %d" % clock.unix_time())
    if getattr(board, "HAS_WIFI", False):
        # A deep sleep's wake starts Wi-Fi only if it sends (kpnthings.deepsleep).
        link = connect_wifi(cfg, feed, log) if deep is None else deep.connect_wifi(cfg)
    hours = cfg.get("ntp_resync_h")
    clock_trusted = clock_checker(
        clock,
        link,
        feed,
        resync_ms=None if hours is None else hours * 3600000,
        log=log,
    )
    clock_trusted()

    from kpnthings.device import Device, led_signal

    device = (Device if deep is None else deep.Device)(
        cfg,
        reader,
        transport,
        actuators,
        outbox=make_outbox(cfg, log, transport, feed, link.poll if link is not None else None),
        now=clock.unix_time,
        log=log,
        clock_trusted=clock_trusted,
        feed=feed,
        link_ready=link.poll if link is not None else None,
        link_drop=link.drop if link is not None else None,
        signal=led_signal(board, actuators.spec.get("led")),
    )
    if cfg.get("update"):  # signed updates (docs/updates.md): this boot's part, then gone
        from kpnthings import unload, update_boot

        try:
            update_boot.boot(device, _ca_paths(cfg), _dirname(path), log)
        finally:
            del update_boot
            unload("update_boot")
    return device, transport
