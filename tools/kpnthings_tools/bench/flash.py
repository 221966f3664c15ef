"""Flash: the .mpy bytes of lib/kpnthings per architecture, and what a deploy copies for an
HTTPS config without sensors.

The deployed set comes from kpnthings_tools.modules.module_set(config) where that exists (the
set `kpnthings deploy` copies, with the reason for each module); otherwise from CORE_MODULES
below, the modules the HTTPS path imports today. The JSON says which.
"""

from pathlib import Path

from .. import build
from . import trees

TARGET_FLASH = 24 * 1024  # the whole library, the earlier target
TARGET_DEPLOYED = 32 * 1024  # issue 15: what is deployed for an HTTPS config without sensors

# The modules a board needs for the default HTTPS path (app and wiring are the firmware that
# main.py starts); MQTT and sensor drivers are only imported when config.json asks for them.
CORE_MODULES = (
    "__init__",
    "app",
    "auth",
    "backoff",
    "batch",
    "client",
    "clock",
    "compat",
    "config",
    "device",
    "downlink",
    "http_client",
    "outbox",
    "senml",
    "watchdog",
    "wifi",
    "wiring",
)

# An HTTPS config without sensors, as `kpnthings new-device --board esp32` writes it.
HTTPS_CONFIG = {
    "dvnuuid": "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab",
    "secret": "72J3wD2bd49jnMI8S31j2L3vZldH3rSS",
    "url": "https://prod.dm.kpnthings.com",
    "board": "esp32",
    "wifi_ssid": "bench",
    "wifi_password": "bench-password",
    "ca_file": "ca.der",
}


def deployed_set(config=HTTPS_CONFIG):
    """([(lib-relative .py path, reason)], source): the module set a deploy copies."""
    try:
        from kpnthings_tools.modules import module_set
    except ImportError:
        paths = [("kpnthings/%s.py" % m, "bench CORE_MODULES") for m in CORE_MODULES]
        return paths, "kpnthings_tools.bench.flash.CORE_MODULES (fallback: no module_set)"
    return [tuple(x) for x in module_set(dict(config))], "kpnthings_tools.modules.module_set"


def measure_flash():
    """Per architecture: every module's .mpy size, the total, the HTTPS core, the deployed set."""
    chosen, source = deployed_set()
    wanted = [p for p, _ in chosen]
    out = {}
    for arch in build.ARCHS:
        sizes = build.compile_lib(arch, trees.OUT / "flash" / arch)
        per = {}
        for src, _mpy, size in sizes:
            per[Path(src).relative_to(trees.ROOT / "lib").as_posix()] = size
        core = sum(v for k, v in per.items() if k[len("kpnthings/") : -3] in CORE_MODULES)
        missing = [p for p in wanted if p not in per]
        out[arch] = {
            "modules": per,
            "total": sum(per.values()),
            "core_https": core,
            "deployed_https": sum(per.get(p, 0) for p in wanted),
            "deployed_missing": missing,
        }
    out["target"] = TARGET_FLASH
    out["target_deployed"] = TARGET_DEPLOYED
    out["core_modules"] = list(CORE_MODULES)
    out["deployed_set"] = [list(x) for x in chosen]
    out["deployed_set_source"] = source
    return out


def baseline_mpy_bytes(arch):
    """micropython-senml's .mpy bytes (what a user deploys instead; requests is frozen)."""
    return sum(p.stat().st_size for p in (trees.baseline(arch) / "senml").glob("*.mpy"))
