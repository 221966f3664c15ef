"""What the update tests share: a release of the library for the test board (crashtest), signed
with a fresh key, an emulator serving it, and the firmware booted as a board boots it (boot.py,
then main.py, in one interpreter) in a board folder of its own."""

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from _firmware_support import BOARD_DIR, ROOT, write_config
from _outbox_support import SECRET, UUID

from kpnthings_tools import build, release, release_keys
from kpnthings_tools.emulator import Emulator

# boot.py (the one deploy copies for a config with update), then main.py, in one interpreter,
# from the board folder (the cwd), as a board runs
BOOT = (
    "exec(open(%r).read(), {'__name__': 'boot'})\n"
    "exec(open(%r).read(), {'__name__': '__main__'})\n"
    % (str(ROOT / "firmware" / "boot_update.py"), str(ROOT / "firmware" / "main.py"))
)


def make_release(releases, version, key, changes=None, board="crashtest"):
    """releases/version: every library module as .mpy (bytecode), __version__ stamped, signed
    with `key`; `changes` {module path: source text} replaces modules (a broken version)."""
    folder = Path(releases) / version
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "lib"
        shutil.copytree(ROOT / "lib", src)
        init = src / "kpnthings" / "__init__.py"
        text = init.read_text().replace('__version__ = "0.1.0"', '__version__ = "%s"' % version)
        init.write_text(text)
        for rel, text in (changes or {}).items():
            (src / rel).write_text(text)
        files = []
        for py in sorted((src / "kpnthings").rglob("*.py")):
            rel = py.relative_to(src).with_suffix(".mpy").as_posix()
            dst = folder / rel
            build.compile_file(py, dst, None, source_name=rel)
            data = dst.read_bytes()
            files.append((rel, len(data), hashlib.sha256(data).hexdigest()))
    raw = release.manifest_bytes(version, board, files)
    (folder / release.MANIFEST).write_bytes(raw)
    (folder / release.SIGNATURE).write_bytes(release_keys.sign(key, raw))
    return folder


class Rig:
    """A board folder (config.json, update_key.pub, the outbox, u/) and an emulator with
    --releases; `boot()` runs the firmware once to its end, `marker()` reads u/boot."""

    def __init__(self, tmp_path, mp_env, boots=2, cycles=2, key=None, chain=None, binary=None):
        self.key = key or release_keys.new_private_key()
        self.releases = tmp_path / "releases"
        self.releases.mkdir()
        self.emu = Emulator(tmp_path / "emu.sqlite3", {UUID: SECRET}, releases=self.releases)
        self.binary = binary
        self.board = tmp_path / "board"
        self.board.mkdir()
        extra = {}
        if chain is None:
            self.server = self.emu.serve("127.0.0.1", 0)
            self.url = "http://127.0.0.1:%d" % self.server.port
        else:  # verified HTTPS: the board trusts the chain's root only (ca_file)
            self.server = self.emu.serve(
                "127.0.0.1", 0, tls_cert=str(chain.cert), tls_key=str(chain.key)
            )
            self.url = "https://127.0.0.1:%d" % self.server.port
            shutil.copy(chain.ca_der, self.board / "ca.der")
            extra["ca_file"] = "ca.der"
        (self.board / "update_key.pub").write_bytes(release_keys.public_bytes(self.key))
        self.config = write_config(
            self.board / "config.json",
            self.url,
            cycles=cycles,
            update={"url": self.url + "/updates/" + UUID, "key": "update_key.pub", "boots": boots},
            **extra,
        )
        self.env = mp_env("micropython-src", extra_path=[str(BOARD_DIR)])
        self.env["KPN_CONFIG"] = str(self.config)
        self.env["KPN_CRASHTEST_STATE"] = str(self.board / "seq")

    def close(self):
        self.server.shutdown()

    def command(self):
        from kpnthings_tools import demo

        return [self.binary or demo.micropython_binary(), "-c", BOOT]

    def boot(self, timeout=60):
        return subprocess.run(
            self.command(), cwd=self.board, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def marker(self):
        try:
            return (self.board / "u" / "boot").read_text().split()
        except FileNotFoundError:
            return None

    def running(self, out):
        """The version a boot's log says it ran ("[boot] kpnthings X, ...")."""
        for line in out.splitlines():
            if line.startswith("[boot] kpnthings "):
                return line.split()[2].rstrip(",")
        return None

    def records(self, name):
        """Values of every record called `name` the emulator accepted from the device."""
        out = []
        for m in self.emu.messages(UUID, 0, 1000):
            if m.get("outcome") != "accepted":
                continue
            for rec in m.get("records") or []:
                if str(rec.get("n", "")).endswith(":" + name) or rec.get("n") == name:
                    out.append(rec.get("vs"))
        return out

    def slot_intact(self):
        """True when the folder the marker names holds exactly its manifest's files (or the
        marker names the base): the board never boots a mixture."""
        w = self.marker()
        if w is None or w[1] == "-":
            return True
        version = w[2]
        doc = json.loads((self.releases / version / release.MANIFEST).read_bytes())
        for rel, size, digest in doc["files"]:
            path = self.board / w[1] / rel
            if not path.is_file():
                return False
            data = path.read_bytes()
            if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
                return False
        return True
