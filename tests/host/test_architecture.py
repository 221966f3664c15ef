"""docs/ARCHITECTURE.md against the code: every function it names exists, its module map names
every module of lib/kpnthings, and the rules it states hold (lib never imports tools, firmware
is two lines, no import circles, no dead modules)."""

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib" / "kpnthings"
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()


def _modules():
    """kpnthings module name -> path, for every module of the library (sensors included)."""
    out = {}
    for path in sorted(LIB.rglob("*.py")):
        parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(path, package):
    """The kpnthings modules a file imports, at the top level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(node.module + "." + a.name for a in node.names)
        elif (  # __import__("kpnthings.x", ...): an import that interns no name where it is
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(node.args[0].value)
    return found


def _graph():
    mods = _modules()
    return {
        name: sorted(m for m in _imports(path, name) if m in mods and m != name)
        for name, path in mods.items()
    }


def test_every_function_the_page_names_exists():
    names = sorted(set(re.findall(r"`(kpnthings\.[A-Za-z_][\w.]*)`", DOC)))
    assert len(names) > 20, names
    for dotted in names:
        parts = dotted.split(".")
        # the longest importable prefix is the module, the rest are attributes
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        for attr in parts[i:]:
            assert hasattr(obj, attr), "docs/ARCHITECTURE.md names %s: no %s" % (dotted, attr)
            obj = getattr(obj, attr)


def test_the_module_map_names_every_module():
    table = DOC.split("## The map")[1].split("## The path")[0]
    named = set(re.findall(r"`([a-z_0-9]+)`", table))
    flat = {p.stem for p in LIB.glob("*.py") if p.stem != "__init__"}
    assert flat - named == set(), "modules missing from the map: %s" % sorted(flat - named)
    assert "sensors" in table


def test_lib_never_imports_tools():
    for name, path in _modules().items():
        bad = [m for m in _imports(path, name) if m.split(".")[0] in ("kpnthings_tools", "tools")]
        assert not bad, (name, bad)


def test_firmware_main_is_two_lines():
    tree = ast.parse((ROOT / "firmware" / "main.py").read_text())
    body = [
        n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
    ]
    assert len(body) == 2
    assert ast.unparse(body[0]) == "from kpnthings import app"
    assert ast.unparse(body[1]) == "app.main()"


def _circles(graph):
    """The import circles of `graph` (module -> modules it imports), each as the sorted tuple of
    its modules: the strongly connected components of more than one module (Tarjan's)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(tuple(sorted(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _groups():
    """module -> its group, from the map's table (the sensors package is one group)."""
    table = DOC.split("## The map")[1].split("## The path")[0]
    out = {}
    for row in table.splitlines():
        cells = row.split("|")
        if len(cells) > 3 and "`" in cells[2]:
            for name in re.findall(r"`([a-z_0-9]+)`", cells[2]):
                out["kpnthings." + name] = cells[1].strip()
    return out


def _group_of(groups, module):
    if module.startswith("kpnthings.sensors"):
        return "sensors"
    return groups.get(module, module)


def test_no_import_circle_between_groups():
    # A module may load a rare part of itself on demand (outbox -> outbox_read, which imports
    # the outbox's primitives back): one component, split by how often its code runs. A circle
    # that ties two groups of the map together is a design knot, and none may exist.
    graph = _graph()
    graph.pop("kpnthings", None)  # the package: every module imports unload() from it
    groups = _groups()
    knots = [c for c in _circles(graph) if len({_group_of(groups, m) for m in c}) > 1]
    assert knots == [], knots


# The circles left inside a group, each a module whose rare parts are loaded on demand and
# import the module's own primitives back (outbox -> outbox_read -> outbox); named so that a
# new one is a decision, not an accident. The one that joins modules of different names, and why:
KNOWN_CIRCLES = {
    # the boot's outbox set-up: the owner and the handover, boot-only, use wiring's helpers
    ("kpnthings.outbox_handover", "kpnthings.outbox_owner", "kpnthings.wiring"),
}


def test_circles_only_join_a_module_and_its_parts():
    graph = _graph()
    graph.pop("kpnthings", None)
    odd = []
    for circle in _circles(graph):
        # One family: the first word of the name under kpnthings (flush for flush_answer,
        # update for update_apply and update_boot, sensors for kpnthings.sensors.dht).
        families = {m.split(".")[1].split("_")[0] for m in circle}
        if circle not in KNOWN_CIRCLES and len(families) > 1:
            odd.append(circle)
    assert odd == [], odd
    # The loop is in none: the sending (flush*) takes the outcomes from kpnthings.client, which
    # makes the Results, not from kpnthings.device, which loads it; both name the same strings.
    assert not [c for c in _circles(graph) if "kpnthings.device" in c]
    from kpnthings import client, device

    for name in ("ACCEPTED", "MALFORMED", "RETRY"):
        assert getattr(device, name) == getattr(client, name), name


def test_the_circle_check_sees_a_circle():
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["e"]}
    assert _circles(graph) == [("a", "b", "c")]


def test_no_dead_modules():
    # Reachable from the firmware's entry point, the boards, and the sensor drivers the config's
    # `sensors` list names (kpnthings.sensors imports them by type, in a table).
    graph = _graph()
    # kpnthings.senml is the Pack API for users' own scripts (README, "One library, three ways").
    roots = ["kpnthings.app", "kpnthings.senml"]
    for board in (ROOT / "boards").glob("*.py"):
        roots += [m for m in _imports(board, "boards") if m in graph]
    from kpnthings import sensors

    roots += [sensors._driver_class(kind).__module__ for kind in sensors.types()]
    seen = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(graph.get(node, ()))
        parent = node.rpartition(".")[0]
        if parent:
            stack.append(parent)
    dead = sorted(set(graph) - seen)
    assert dead == [], "imported by nothing: %s" % dead
