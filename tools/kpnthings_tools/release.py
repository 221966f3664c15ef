"""A release: the deployable module set of a config, compiled for a board, with a manifest the
board checks before it changes anything (docs/updates.md).

    <out>/<version>/manifest.json   {"board": B, "files": [[path, size, sha256 hex], ...],
                                     "version": "1.2.0"}: compact JSON, keys sorted, one line
    <out>/<version>/manifest.sig    64 bytes r || s over manifest.json's exact bytes (sign())
    <out>/<version>/<path>          each file, path as on the board under the version folder
                                    (kpnthings/app.mpy, boards/esp32.mpy)

The module set is the deploy's (kpnthings_tools.modules for the config, compiled by
deploy_build.compile_modules), so a release holds exactly what `kpnthings deploy` would put on
the same board for the same config, with kpnthings.__version__ stamped to the release's version.
"""

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path

from . import build, modules
from .deploy_build import compile_modules
from .deploy_checks import DeployError, check_board, load_config

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
# What the board compares: three whole numbers. A pre-release suffix would need an order the
# board must also know; a release is either newer or refused.
VERSION = re.compile(r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$")
_VERSION_LINE = re.compile(r'^__version__ = "[^"]*"$', re.M)


class ReleaseError(Exception):
    """A release that cannot be built, signed or checked; the message says what to fix."""


def check_version(text):
    if not VERSION.match(text or ""):
        raise ReleaseError("version %r: give MAJOR.MINOR.PATCH, whole numbers (1.2.0)" % text)
    return text


def version_tuple(text):
    return tuple(int(x) for x in check_version(text).split("."))


def manifest_bytes(version, board, files):
    """The exact bytes signed: files [(path, size, sha256 hex)] sorted by path."""
    doc = {"board": board, "files": sorted([list(f) for f in files]), "version": version}
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            h.update(chunk)
    return h.hexdigest()


def _stamp_version(root, version, arch, out):
    """kpnthings/__init__.mpy compiled with __version__ = version."""
    src = root / "lib" / "kpnthings" / "__init__.py"
    text, n = _VERSION_LINE.subn('__version__ = "%s"' % version, src.read_text(), count=1)
    if n != 1:
        raise ReleaseError("%s has no __version__ line to stamp" % src)
    with tempfile.TemporaryDirectory() as tmp:
        stamped = Path(tmp) / "__init__.py"
        stamped.write_text(text)
        build.compile_file(stamped, out, arch, source_name="kpnthings/__init__.py")


def build_release(config_path, board, version, out_dir, root=None):
    """Compile the config's module set for `board` into out_dir/version; returns its folder."""
    check_version(version)
    root = Path(root) if root else build.repo_root()
    try:
        arch = build.arch_for_board(board)
        config = load_config(config_path, board, root)
        check_board(board, config, config_path)
    except (build.BuildError, DeployError) as e:
        raise ReleaseError(str(e)) from None
    if not config.get("update"):
        raise ReleaseError(
            'config %s has no "update": a board running this release could never take the '
            "next one (the update code goes only to a config with it)" % config_path
        )
    chosen, _left = modules.analyse(config, root)
    folder = Path(out_dir) / version
    if folder.exists():
        raise ReleaseError("%s exists: a released version is never rebuilt" % folder)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            items = compile_modules(board, arch, [rel for rel, _ in chosen], Path(tmp), root)
        except DeployError as e:
            raise ReleaseError(str(e)) from None
        for item in items:
            if item.dest == "lib/kpnthings/__init__.mpy":
                _stamp_version(root, version, arch, item.src)
        files = []
        for item in items:
            rel = item.dest[len("lib/") :]
            dst = folder / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.src, dst)
            files.append((rel, dst.stat().st_size, _sha256(dst)))
    (folder / MANIFEST).write_bytes(manifest_bytes(version, board, files))
    return folder


def sign_release(folder, private_key_path, public_key_path=None):
    """Sign folder/manifest.json (its bytes as they are) into folder/manifest.sig, after checking
    every file against it; checks the signature with the public key when given. Returns the
    manifest's parsed contents."""
    folder = Path(folder)
    doc, raw = check_files(folder)
    from . import release_keys  # cryptography (the dev set's): the demo's emulator imports this
    # module for its constants only, and runs without it

    try:
        key = release_keys.load_private(private_key_path)
    except release_keys.ReleaseKeyError as e:
        raise ReleaseError(str(e)) from None
    sig = release_keys.sign(key, raw)
    if public_key_path is not None:
        public = Path(public_key_path).read_bytes()
        if not release_keys.verify(public, raw, sig):
            raise ReleaseError(
                "%s is not the public half of %s: the boards would refuse this release"
                % (public_key_path, private_key_path)
            )
    (folder / SIGNATURE).write_bytes(sig)
    return doc


def check_files(folder):
    """(manifest, its bytes) after checking each file's size and SHA-256 against it."""
    folder = Path(folder)
    try:
        raw = (folder / MANIFEST).read_bytes()
        doc = json.loads(raw)
    except (OSError, ValueError) as e:
        raise ReleaseError("%s: %s" % (folder / MANIFEST, e)) from None
    check_version(doc.get("version"))
    for rel, size, digest in doc.get("files", []):
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size or _sha256(path) != digest:
            raise ReleaseError("%s does not match the manifest (size or sha256)" % path)
    return doc, raw


def verify_release(folder, public_key_path):
    """The manifest when manifest.sig verifies under the public key and every file matches."""
    folder = Path(folder)
    doc, raw = check_files(folder)
    sig_path = folder / SIGNATURE
    if not sig_path.is_file():
        raise ReleaseError("%s is not signed (kpnthings release sign)" % folder)
    from . import release_keys

    if not release_keys.verify(Path(public_key_path).read_bytes(), raw, sig_path.read_bytes()):
        raise ReleaseError("%s: the signature does not verify with %s" % (folder, public_key_path))
    return doc
