"""package.json (mip) and manifest.py (freezing) agree with lib/kpnthings, pyproject and each other.

When a module is added to lib/kpnthings, refresh package.json with
    .venv/bin/python -m kpnthings_tools.build --update-package-json
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from kpnthings_tools import build

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


def _package_json():
    with open(ROOT / "package.json") as f:
        return json.load(f)


def _init_version():
    text = (ROOT / "lib" / "kpnthings" / "__init__.py").read_text()
    return re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M).group(1)


def test_package_json_lists_every_module_and_nothing_else():
    urls = _package_json()["urls"]
    listed = [dest for dest, _src in urls]
    assert len(listed) == len(set(listed)), "duplicate entries in package.json"
    files = _library_files()
    missing = sorted(files - set(listed))
    extra = sorted(set(listed) - files)
    assert not missing, "package.json misses %s; %s" % (missing, FIX)
    assert not extra, "package.json lists files that do not exist: %s; %s" % (extra, FIX)


def test_package_json_urls_point_at_the_same_file_in_the_repo():
    for dest, src in _package_json()["urls"]:
        assert src == "github:%s/lib/%s" % (REPO, dest), (dest, src)
        assert dest.startswith("kpnthings/") and dest.endswith(".py"), dest


def test_versions_agree():
    data = _package_json()
    # A regex, not tomllib: the project supports Python 3.10, which has no tomllib.
    text = (ROOT / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    pyproject = re.search(r'^version\s*=\s*"([^"]+)"', project, re.M).group(1)
    assert data["version"] == _init_version() == pyproject
    assert data["deps"] == [] or all(isinstance(d, list) and len(d) == 2 for d in data["deps"])


def test_package_json_is_what_the_generator_writes():
    # Same content and layout, so --check-package-json (and review diffs) stay meaningful.
    assert (ROOT / "package.json").read_text() == build.render_package_json(
        build.package_json(ROOT)
    ), FIX


def _run_manifest():
    """Execute manifest.py with the manifest loader's functions recorded, as the firmware build
    (micropython tools/manifestfile.py) would call them."""
    calls = []

    def record(name):
        return lambda *args, **kwargs: calls.append((name, args, kwargs))

    env = {n: record(n) for n in ("metadata", "package", "module", "require", "include")}
    source = (ROOT / "manifest.py").read_text()
    exec(compile(source, "manifest.py", "exec"), env)
    return calls


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


def test_generator_notices_a_new_module_and_fixes_package_json(tmp_path):
    lib = tmp_path / "lib" / "kpnthings"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text('__version__ = "9.8.7"\n')
    (lib / "auth.py").write_text("X = 1\n")
    assert build.update_package_json(tmp_path) is True
    assert build.update_package_json(tmp_path) is False  # idempotent
    (lib / "newmod.py").write_text("Y = 2\n")
    (lib / "sub").mkdir()
    (lib / "sub" / "__init__.py").write_text("")
    data = json.loads((tmp_path / "package.json").read_text())
    assert "kpnthings/newmod.py" not in [d for d, _s in data["urls"]]
    assert build.update_package_json(tmp_path) is True
    data = json.loads((tmp_path / "package.json").read_text())
    assert [d for d, _s in data["urls"]] == [
        "kpnthings/__init__.py",
        "kpnthings/auth.py",
        "kpnthings/newmod.py",
        "kpnthings/sub/__init__.py",
    ]
    assert data["version"] == "9.8.7"


def test_check_package_json_command_passes_on_the_repo():
    proc = subprocess.run(
        [sys.executable, "-m", "kpnthings_tools.build", "--check-package-json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
