"""package.json and packages/<component>/ (mip), manifest.py and packages/<component>/manifest.py
(freezing) agree with lib/kpnthings, the component table, pyproject and each other.

When a module is added to lib/kpnthings, give it a component (tools/kpnthings_tools/components.py)
and refresh the files with
    .venv/bin/python -m kpnthings_tools.build --update-package-json
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kpnthings_tools import build, components, mip_packages

ROOT = Path(__file__).resolve().parents[2]
REPO = "kpnthings/kpnthings-micropython"
FIX = "run: .venv/bin/python -m kpnthings_tools.build --update-package-json"


def _library_files():
    """Every .py under lib/kpnthings, found here independently of build.py."""
    lib = ROOT / "lib"
    found = set()
    for folder, dirs, files in os.walk(lib / "kpnthings"):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                found.add(Path(folder, name).relative_to(lib).as_posix())
    return found


def _package_json(rel="package.json"):
    with open(ROOT / rel) as f:
        return json.load(f)


def _component_jsons():
    """{component name: its packages/<name>/package.json}, as the checkout holds them."""
    return {
        path.parent.name: _package_json(path.relative_to(ROOT))
        for path in sorted((ROOT / "packages").glob("*/package.json"))
    }


def _dests(data):
    listed = [dest for dest, _src in data["urls"]]
    assert len(listed) == len(set(listed)), "duplicate entries"
    return set(listed)


def _init_version():
    text = (ROOT / "lib" / "kpnthings" / "__init__.py").read_text()
    return re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M).group(1)


def test_root_package_json_installs_core_and_https():
    # mip's common case: `mpremote mip install github:<owner>/<repo>`, an HTTPS board.
    wanted = set()
    for part in components.required(["core", "https"]):  # https requires http, the client
        wanted |= set(components.files(part))
    listed = _dests(_package_json())
    files = _library_files()
    assert listed <= files, "package.json lists files that do not exist: %s; %s" % (
        sorted(listed - files),
        FIX,
    )
    assert listed == wanted, FIX
    assert _package_json()["deps"] == []  # every file listed: see mip_packages.package_json


def test_each_component_has_a_package_of_itself_and_what_it_requires():
    found = _component_jsons()
    assert sorted(found) == sorted(c.name for c in components.COMPONENTS), FIX
    covered = set()
    for name, data in found.items():
        wanted = set()
        for part in components.required([name]):
            wanted |= set(components.files(part))
        assert _dests(data) == wanted, (name, FIX)
        covered |= set(components.files(name))
    # Together the components are the whole library: nothing is out of every package.
    assert covered == _library_files(), FIX


def test_package_json_urls_point_at_existing_files_in_the_repo():
    for data in [_package_json(), *_component_jsons().values()]:
        for dest, src in data["urls"]:
            assert src == "github:%s/lib/%s" % (REPO, dest), (dest, src)
            assert dest.startswith("kpnthings/") and dest.endswith(".py"), dest
            assert (ROOT / "lib" / dest).is_file(), dest


def test_versions_agree():
    data = _package_json()
    # A regex, not tomllib: the project supports Python 3.10, which has no tomllib.
    text = (ROOT / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    pyproject = re.search(r'^version\s*=\s*"([^"]+)"', project, re.M).group(1)
    assert data["version"] == _init_version() == pyproject
    for name, part in _component_jsons().items():
        assert part["version"] == data["version"], name
        assert part["deps"] == [] or all(isinstance(d, list) and len(d) == 2 for d in part["deps"])
        manifest = _run_manifest("packages/%s/manifest.py" % name)
        [metadata] = [kw for call, _a, kw in manifest if call == "metadata"]
        assert metadata["version"] == data["version"], name


def test_package_files_are_what_the_generator_writes():
    # Same content and layout, so --check-package-json (and review diffs) stay meaningful.
    for rel, text in mip_packages.package_files(ROOT).items():
        assert (ROOT / rel).read_text() == text, (rel, FIX)
    assert mip_packages.stale_package_files(ROOT) == [], FIX


def _run_manifest(rel="manifest.py"):
    """Execute a manifest with the manifest loader's functions recorded, as the firmware build
    (micropython tools/manifestfile.py) would call them."""
    calls = []

    def record(name):
        return lambda *args, **kwargs: calls.append((name, args, kwargs))

    names = ("metadata", "package", "module", "require", "include", "add_library")
    env = {n: record(n) for n in names}
    source = (ROOT / rel).read_text()
    exec(compile(source, rel, "exec"), env)
    return calls


def _frozen(manifest, seen):
    """The files (relative to lib/) a manifest freezes, following add_library() and
    require(name, library=...) as manifestfile.py does: a library is a folder searched for
    <name>/manifest.py, and a manifest is read once however often it is required."""
    here = manifest.parent
    libraries = {}
    out = []
    for call, args, kwargs in _run_manifest(manifest.relative_to(ROOT).as_posix()):
        if call == "add_library":
            libraries[args[0]] = (here / args[1]).resolve()
        elif call == "require":
            [path] = list(libraries[kwargs["library"]].rglob(args[0] + "/manifest.py"))
            if path not in seen:
                seen.add(path)
                out += _frozen(path, seen)
        elif call == "package":
            base = (here / kwargs.get("base_path", ".")).resolve()
            for name in kwargs["files"]:
                path = base / args[0] / name
                assert path.is_file(), (manifest, path)
                out.append(path.relative_to(ROOT / "lib").as_posix())
        else:
            assert call == "metadata", (manifest, call)
    return out


@pytest.mark.parametrize("name", [c.name for c in components.COMPONENTS])
def test_a_components_manifest_freezes_it_with_what_it_requires(name):
    manifest = ROOT / "packages" / name / "manifest.py"
    frozen = _frozen(manifest, {manifest})
    assert len(frozen) == len(set(frozen)), frozen
    # The same files its mip package installs: one component, one set, both ways.
    assert set(frozen) == _dests(_package_json("packages/%s/package.json" % name))


def test_manifest_freezes_the_library_at_the_same_version():
    calls = _run_manifest()
    metadata = [kw for name, _a, kw in calls if name == "metadata"]
    assert len(metadata) == 1
    assert metadata[0]["version"] == _init_version()
    assert metadata[0]["description"]
    packages = [(a, kw) for name, a, kw in calls if name == "package"]
    assert packages, "manifest.py freezes nothing"
    for args, kwargs in packages:
        base = ROOT / kwargs.get("base_path", ".")
        assert (base / args[0] / "__init__.py").is_file(), (args, kwargs)
    assert [a[0] for a, _kw in packages] == ["kpnthings"]


def _checkout_copy(tmp_path):
    shutil.copytree(
        ROOT / "lib" / "kpnthings",
        tmp_path / "lib" / "kpnthings",
        ignore=shutil.ignore_patterns("__pycache__", "*.mpy"),
    )
    return tmp_path


def test_generator_writes_the_packages_and_refuses_a_module_without_a_component(tmp_path):
    root = _checkout_copy(tmp_path)
    assert mip_packages.update_package_json(root) is True
    assert mip_packages.update_package_json(root) is False  # idempotent
    assert mip_packages.stale_package_files(root) == []
    for rel, text in mip_packages.package_files(ROOT).items():  # the same files as the repository's
        assert (root / rel).read_text() == text, rel
    # A module the table does not name: no package is written until it has a component.
    (root / "lib" / "kpnthings" / "brand_new.py").write_text("X = 1\n")
    with pytest.raises(build.BuildError, match=r"lib/kpnthings/brand_new\.py belongs to no comp"):
        mip_packages.update_package_json(root)
    (root / "lib" / "kpnthings" / "brand_new.py").unlink()
    # A module gone while the table still names it.
    (root / "lib" / "kpnthings" / "senml.py").unlink()
    with pytest.raises(build.BuildError, match=r"component senml: 'senml' matches no"):
        mip_packages.update_package_json(root)


def test_generator_removes_the_folder_of_a_component_no_longer_in_the_table(tmp_path):
    root = _checkout_copy(tmp_path)
    mip_packages.update_package_json(root)
    old = root / "packages" / "retired"
    old.mkdir()
    (old / "package.json").write_text("{}\n")
    (old / "manifest.py").write_text("")
    assert mip_packages.stale_package_files(root) == [
        "packages/retired/manifest.py",
        "packages/retired/package.json",
    ]
    assert mip_packages.update_package_json(root) is True
    assert not old.exists()
    assert mip_packages.stale_package_files(root) == []
    (root / "packages" / "mqtt" / "package.json").write_text("{}\n")
    assert mip_packages.stale_package_files(root) == ["packages/mqtt/package.json"]


def test_check_package_json_command_passes_on_the_repo():
    proc = subprocess.run(
        [sys.executable, "-m", "kpnthings_tools.build", "--check-package-json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


class _Board:
    """What mpremote's mip writes through: a board filesystem kept in a dict."""

    def __init__(self):
        self.files = {}
        self.dirs = set()

    def fs_exists(self, path):
        return path in self.dirs or path in self.files

    def fs_mkdir(self, path):
        self.dirs.add(path)

    def fs_writefile(self, path, data, progress_callback=None):
        self.files[path] = data


@pytest.mark.parametrize(
    ("package", "version"),
    [("", None), ("/packages/mqtt", None), ("/packages/sensors-dht", "v9.9")],
)
def test_mpremote_mip_installs_a_package_with_what_it_requires(monkeypatch, package, version):
    """mpremote's own installer (`mpremote mip install github:<owner>/<repo>/packages/mqtt`)
    over the generated files, with GitHub's raw host served from this checkout: every file of
    the package lands under /lib, fetched at the version asked for."""
    import io
    import urllib.request

    from mpremote import mip

    fetched = []
    prefix = "https://raw.githubusercontent.com/%s/" % REPO

    def urlopen(url):
        assert url.startswith(prefix), url
        ref, _, rel = url[len(prefix) :].partition("/")
        fetched.append(ref)
        return io.BytesIO((ROOT / rel).read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    board = _Board()
    mip._install_package(board, "github:%s%s" % (REPO, package), None, "/lib", version, True)
    data = _package_json((package.lstrip("/") + "/package.json").lstrip("/"))
    assert set(board.files) == {"/lib/" + dest for dest, _src in data["urls"]}
    for dest, _src in data["urls"]:
        assert board.files["/lib/" + dest] == (ROOT / "lib" / dest).read_bytes()
    assert set(fetched) == {version or "HEAD"}  # one ref for every file
