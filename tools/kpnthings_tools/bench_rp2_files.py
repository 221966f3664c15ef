"""What `make bench` on the emulated Pico W puts onto the chip (kpnthings_tools.bench_rp2).

Our side: the modules `kpnthings deploy` copies for an HTTPS config (kpnthings_tools.modules),
as .mpy under /lib, with the board package, boot.py and a CA certificate; for the CPU figure,
the pack API beside them. The baseline: micropython-senml and umqtt.simple as .mpy.
"""

import ssl
from pathlib import Path

from . import build

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "bench" / "rp2"
OUT = ROOT / "build" / "bench" / "rp2"
# The board and the https URL of the config whose deployed set is measured.
BOARD = "pico_w"
URL = "https://prod.dm.kpnthings.com"


def bench_config(identity, cycles):
    """An HTTPS config for the emulated Pico W: Wi-Fi settings (its chip fails), a CA file."""
    return {
        "dvnuuid": identity.dvnuuid,
        "secret": identity.secret,
        "board": BOARD,
        "url": URL,
        "wifi_ssid": "benchnet",
        "wifi_password": "bench-password",
        "ca_file": "ca.der",
        "interval_s": 1,
        "cycles": cycles,
        # The device rests before each wait, as at the default 60 s interval (idle_close_s 30):
        # the same state the unix port's heap at rest is measured in (bench/at_rest.py).
        "idle_close_s": 0,
    }


def ca_der():
    """A CA certificate in DER form (RSA-2048, as public CAs issue), from trustme."""
    import trustme

    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    return ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())


def _module_path(name):
    """A module as module_set or CORE_MODULES may name it -> its path in kpnthings/, no suffix."""
    name = str(name)
    for suffix in (".mpy", ".py"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    for prefix in ("lib/", "kpnthings/", "kpnthings."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name in ("", "kpnthings"):
        return "__init__"
    return name.replace(".", "/")


def deployed_modules(config):
    """(modules of kpnthings the config's deploy copies, where the list came from): from
    kpnthings_tools.modules.module_set(config) where it exists, else bench.CORE_MODULES."""
    try:
        from .modules import module_set
    except ImportError:
        module_set = None
    if module_set is not None:
        found = module_set(config)
        if isinstance(found, dict):
            found = list(found)
        names = [_module_path(m[0] if isinstance(m, (tuple, list)) else m) for m in found]
        source = "kpnthings_tools.modules.module_set"
    else:
        from .bench import CORE_MODULES

        names = list(CORE_MODULES)
        source = "kpnthings_tools.bench.CORE_MODULES"
    names = [n for n in names if not n.startswith("boards")]
    if "__init__" not in names:
        names.insert(0, "__init__")
    for n in list(names):
        pkg = n.rsplit("/", 1)[0] + "/__init__" if "/" in n else None
        if pkg and pkg not in names:
            names.append(pkg)  # a subpackage's modules need its __init__
    return sorted(set(names)), source


def dotted(module):
    """kpnthings/<module> as an import name: "sensors/dht" -> "kpnthings.sensors.dht"."""
    if module == "__init__":
        return "kpnthings"
    if module.endswith("/__init__"):
        module = module[: -len("/__init__")]
    return "kpnthings." + module.replace("/", ".")


def _board_mpy(ours_dir, name):
    mpy = Path(ours_dir) / "boards" / (name + ".mpy")
    if mpy.is_file():
        return mpy
    mpy = OUT / "boards" / (name + ".mpy")
    build.compile_file(
        ROOT / "boards" / (name + ".py"), mpy, "armv6m", source_name="boards/%s.py" % name
    )
    return mpy


# The pack API (senml.Pack and the decoder), which the CPU figure's Pack path and the SenML tests
# import; the firmware itself writes its packs with kpnthings.batch and does not deploy it.
PACK_API = ("senml", "senml_encode", "senml_check", "senml_text", "senml_decode")


def library_modules(modules):
    """The deployed set plus the pack API, for runs that use the library beyond the firmware."""
    return sorted(set(modules) | set(PACK_API))


def firmware_files(ours_dir, modules, work):
    """[(local, remote)]: what `kpnthings deploy` puts on a Pico W for this set, but main.py and
    config.json (the bench runs main.py's two lines itself, with a probe, and puts a config
    per run). The CA is written to `work`."""
    ours_dir = Path(ours_dir)
    files = []
    for m in modules:
        mpy = ours_dir / "kpnthings" / (m + ".mpy")
        if not mpy.is_file():
            raise FileNotFoundError("%s: the deployed set names %s, not built" % (mpy, m))
        files.append((mpy, "/lib/kpnthings/%s.mpy" % m))
    for name in ("__init__", BOARD):
        files.append((_board_mpy(ours_dir, name), "/lib/boards/%s.mpy" % name))
    files.append((ROOT / "firmware" / "boot.py", "/boot.py"))
    ca = Path(work) / "ca.der"
    if not ca.is_file():
        ca.write_bytes(ca_der())
    files.append((ca, "/ca.der"))
    return files


def baseline_files(base_dir):
    """micropython-senml (.mpy, with the cbor2 stand-in) and umqtt.simple, under /lib."""
    base_dir = Path(base_dir)
    files = [
        (p, "/lib/" + p.relative_to(base_dir).as_posix()) for p in sorted(base_dir.rglob("*.mpy"))
    ]
    umqtt = OUT / "baseline" / "umqtt" / "simple.mpy"
    build.compile_file(SCRIPTS / "baseline" / "umqtt" / "simple.py", umqtt, "armv6m")
    files.append((umqtt, "/lib/umqtt/simple.mpy"))
    return files
