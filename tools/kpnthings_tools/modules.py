"""The library modules a config needs on the board: the deploy set, worked out from the source.

A board pays heap and flash for every module it holds, so `kpnthings deploy` copies only the
modules the firmware can import with this config. The set is computed, not listed:

1. Every file of lib/kpnthings is parsed with `ast`, and every import of a kpnthings module is
   collected wherever it sits (module level, inside a function, in a branch): `import
   kpnthings.x`, `from kpnthings import x`, `from kpnthings.x import y`, relative imports, and
   helpers such as `__import__("kpnthings." + name)` called with a constant name.
2. The closure is taken from the firmware's roots: firmware/main.py and boot.py, and the board
   package with the one board module the config names (boards/<board>.py, whose `signal()`
   brings kpnthings.status_led where a board blinks an LED). A module no root reaches (today
   kpnthings.deepsleep) is never deployed; a module the lead adds is followed like any other.
3. A few modules serve only some configs: the OPTIONAL table names them with the config
   condition that brings each in. An import of one from a lazy place in a core module (inside a
   function or a branch) counts only when that condition holds. An import at module level
   always counts: it runs whenever its module loads. A module of an optional component that is in
   the set pulls in what it imports, whatever its component.
4. Sensor drivers are chosen per sensor type by the if/elif chain in the kpnthings.sensors
   package (`if kind in ("dht22", "dht11"): from kpnthings.sensors import dht`). That chain is
   read from the source too, so an import in one of its branches counts only when the config
   lists a sensor whose type takes that branch.

`module_set(config)` gives the set with the reason each module is in it; `left_out(config)` says
why each other module stays on the host.
"""

import ast
import fnmatch
from collections import deque
from pathlib import Path

from . import build

PACKAGE = build.PACKAGE_NAME
# The files the board runs by name, relative to the repository root; they import the rest.
FIRMWARE_ROOTS = ("firmware/main.py", "firmware/boot.py")
BOARDS_PACKAGE = "boards"
# The package whose if/elif chains on a sensor's type choose its driver module.
SENSORS_PACKAGE = PACKAGE + ".sensors"


# -- optional components: the only hand-written part --------------------------------------------


def _transport(config):
    return config.get("transport") or "http"


def _http_transport(config):
    """(holds, why) for the HTTP(S) client modules."""
    if _transport(config) == "http":
        scheme = str(config.get("url") or "https:").split(":", 1)[0].lower()
        return True, "transport " + scheme
    return False, "transport is %s, not http" % _transport(config)


def _mqtt_transport(config):
    if _transport(config) == "mqtt":
        return True, "transport mqtt"
    return False, "transport is %s, not mqtt" % _transport(config)


def _has_sensors(config):
    # Not "non-empty": config.validate imports kpnthings.sensors for any "sensors" key that is not
    # null, an empty list included, and a board without the package refuses that config.
    if config.get("sensors") is not None:
        return True, "config has a sensors list"
    return False, "config lists no sensors"


def _previous_identities(config):
    # kpnthings.wiring sends an earlier identity's readings only over HTTP(S).
    if not config.get("previous_identities"):
        return False, "config lists no previous_identities"
    holds, why = _http_transport(config)
    if not holds:
        return False, why
    return True, "config lists previous_identities"


# (module name patterns, condition) -> the condition returns (holds, why) for a config.
OPTIONAL = (
    ((PACKAGE + ".outbox_handover",), _previous_identities),
    ((PACKAGE + ".client", PACKAGE + ".http_client"), _http_transport),
    ((PACKAGE + ".mqtt", PACKAGE + ".mqtt_*"), _mqtt_transport),
    ((SENSORS_PACKAGE, SENSORS_PACKAGE + ".*"), _has_sensors),
)


def optional_condition(module):
    """The condition function of the optional component `module` belongs to, or None (core)."""
    for patterns, condition in OPTIONAL:
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return condition
    return None


def sensor_types(config):
    """The "type" of every sensor the config lists, in order, without repeats."""
    out = []
    for entry in config.get("sensors") or ():
        kind = entry.get("type") if isinstance(entry, dict) else None
        if isinstance(kind, str) and kind not in out:
            out.append(kind)
    return out


# -- reading the source --------------------------------------------------------------------------


class Import:
    """One import of a kpnthings module found in the source.

    `lazy`: inside a function, a class method or a branch, so it runs only on some paths.
    `types`: for an import in a sensor-type branch, (names, other) where the branch is taken
    for a type in `names`, or, with `other` true, for any type not in `names` (the final else).
    """

    __slots__ = ("lazy", "line", "target", "types")

    def __init__(self, target, line, lazy, types=None):
        self.target = target
        self.line = line
        self.lazy = lazy
        self.types = types

    def takes(self, kind):
        names, other = self.types
        return (kind not in names) if other else (kind in names)

    def __repr__(self):
        return "Import(%s, line %d%s)" % (self.target, self.line, ", lazy" if self.lazy else "")


class Source:
    """One parsed file: the library module (or root file) and the kpnthings imports in it."""

    def __init__(self, name, path, is_package=False):
        self.name = name  # kpnthings.wiring, or firmware/main.py and boards.esp32 for roots
        self.path = Path(path)
        self.is_package = is_package
        self.tree = ast.parse(self.path.read_text(), str(self.path))
        self.imports = []
        self.unresolved = []  # (line, text) of dynamic imports of kpnthings that cannot be named


def library_modules(root=None):
    """{dotted module name: path relative to lib/} for every .py file of lib/kpnthings."""
    out = {}
    for rel in build.library_sources(root):
        parts = rel[: -len(".py")].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = rel
    return out


def _string_values(node):
    """The strings a branch test compares a name with (kind == "a", kind in ("a", "b"), or an
    `or` of those), or None for any other test."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        out = set()
        for value in node.values:
            part = _string_values(value)
            if part is None:
                return None
            out |= part
        return out
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return None
    left, op, right = node.left, node.ops[0], node.comparators[0]
    if isinstance(op, ast.Eq):
        if isinstance(left, ast.Constant):
            left, right = right, left
        if isinstance(left, ast.Name) and _is_str(right):
            return {right.value}
    if isinstance(op, ast.In) and isinstance(left, ast.Name):
        if isinstance(right, (ast.Tuple, ast.List, ast.Set)) and all(map(_is_str, right.elts)):
            return {e.value for e in right.elts}
    return None


def _is_str(node):
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _dispatch_branches(node):
    """For an if/elif chain that tests a name against strings in every test:
    [((names, other), body)], the final else as (every name tested above, True). Else None."""
    branches = []
    seen = set()
    while True:
        names = _string_values(node.test)
        if names is None:
            return None
        branches.append(((frozenset(names), False), node.body))
        seen |= names
        if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If):
            node = node.orelse[0]
            continue
        if node.orelse:
            branches.append(((frozenset(seen), True), node.orelse))
        return branches


class _ImportFinder(ast.NodeVisitor):
    """Collects a Source's imports of kpnthings modules, with where each sits."""

    def __init__(self, source, modules, helpers, dispatch):
        self.source = source
        self.modules = modules
        self.helpers = helpers  # ImportHelpers of the whole library
        self.dispatch = dispatch  # read sensor-type chains in this file
        self.depth = 0  # > 0 inside a function or a branch
        self.types = []  # the sensor-type branches we are inside

    # -- where we are

    def _nested(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _nested
    visit_Try = visit_With = visit_For = visit_While = _nested
    if hasattr(ast, "TryStar"):
        visit_TryStar = _nested

    def visit_If(self, node):
        branches = _dispatch_branches(node) if self.dispatch else None
        if branches is None:
            self._nested(node)
            return
        self.depth += 1
        for test_node in _chain_tests(node):
            self.visit(test_node)
        for types, body in branches:
            self.types.append(types)
            for stmt in body:
                self.visit(stmt)
            self.types.pop()
        self.depth -= 1

    # -- what we find

    def _add(self, target, node):
        if target is None:
            return
        types = self.types[-1] if self.types else None
        self.source.imports.append(Import(target, node.lineno, self.depth > 0, types))

    def _known(self, name):
        """`name` if it is a library module, else None (an attribute such as __version__)."""
        return name if name in self.modules else None

    def visit_Import(self, node):
        for alias in node.names:
            if _in_package(alias.name):
                self._add(self._nearest(alias.name), node)

    def visit_ImportFrom(self, node):
        base = self._absolute(node.module, node.level)
        if base is None or not _in_package(base):
            return
        self._add(self._nearest(base), node)
        for alias in node.names:
            self._add(self._known(base + "." + alias.name), node)

    def visit_Call(self, node):
        target = self._dynamic_target(node)
        if target is not None:
            self._add(target, node)
        self.generic_visit(node)

    # -- helpers

    def _nearest(self, name):
        """The module itself, or its nearest enclosing package that exists."""
        while name and name not in self.modules:
            name = name.rpartition(".")[0]
        return name or None

    def _absolute(self, module, level):
        if not level:
            return module
        parts = self.source.name.split(".")
        if not self.source.is_package:
            parts = parts[:-1]
        if level > 1:
            parts = parts[: -(level - 1)]
        base = ".".join(parts)
        return base + "." + module if module else base

    def _dynamic_target(self, node):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name == "__import__" and node.args:
            arg = node.args[0]
            if _is_str(arg):
                return self._nearest(arg.value) if _in_package(arg.value) else None
            # A helper's own `__import__(prefix + name)`: its callers are followed instead.
            if node not in self.helpers.calls and _mentions_package(arg):
                self.source.unresolved.append((node.lineno, ast.unparse(node)))
            return None
        if name in self.helpers.by_name:
            index, prefix = self.helpers.by_name[name]
            if len(node.args) > index and _is_str(node.args[index]):
                return self._known(prefix + node.args[index].value)
            self.source.unresolved.append((node.lineno, ast.unparse(node)))
        return None


def _chain_tests(node):
    tests = []
    while True:
        tests.append(node.test)
        if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If):
            node = node.orelse[0]
        else:
            return tests


def _in_package(name):
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _mentions_package(node):
    return any(_is_str(n) and _in_package(n.value) for n in ast.walk(node))


class ImportHelpers:
    """Functions that import a kpnthings module by a name they are given, such as
    `def _optional_module(name): return __import__("kpnthings." + name, ...)`: by_name maps each
    to (argument index, prefix); calls holds their `__import__` calls."""

    def __init__(self):
        self.by_name = {}
        self.calls = set()


def import_helpers(sources):
    """The ImportHelpers defined anywhere in `sources`."""
    helpers = ImportHelpers()
    for source in sources:
        for fn in ast.walk(source.tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            params = [a.arg for a in fn.args.args]
            for call in ast.walk(fn):
                if not (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id == "__import__"
                    and call.args
                ):
                    continue
                arg = call.args[0]
                if (
                    isinstance(arg, ast.BinOp)
                    and isinstance(arg.op, ast.Add)
                    and _is_str(arg.left)
                    and arg.left.value.startswith(PACKAGE + ".")
                    and isinstance(arg.right, ast.Name)
                    and arg.right.id in params
                ):
                    helpers.by_name[fn.name] = (params.index(arg.right.id), arg.left.value)
                    helpers.calls.add(call)
    return helpers


class ImportGraph:
    """Every library module and root file of a checkout, parsed once, with its imports."""

    def __init__(self, root=None):
        self.root = Path(root) if root else build.repo_root()
        self.modules = library_modules(self.root)
        lib = self.root / "lib"
        self.sources = {}
        for name, rel in self.modules.items():
            self.sources[name] = Source(name, lib / rel, rel.endswith("/__init__.py"))
        self._roots = {}
        self.helpers = import_helpers(self.sources.values())
        for source in self.sources.values():
            self._scan(source)

    def _scan(self, source):
        dispatch = source.name == SENSORS_PACKAGE or source.name.startswith(SENSORS_PACKAGE + ".")
        _ImportFinder(source, self.modules, self.helpers, dispatch).visit(source.tree)

    def root_sources(self, board):
        """The files the board runs or imports by name: firmware entry points, board modules."""
        wanted = [(rel, rel) for rel in FIRMWARE_ROOTS]
        for name in ("__init__", board):
            if name:
                wanted.append(
                    (
                        BOARDS_PACKAGE if name == "__init__" else "%s.%s" % (BOARDS_PACKAGE, name),
                        "%s/%s.py" % (BOARDS_PACKAGE, name),
                    )
                )
        out = []
        for label, rel in wanted:
            path = self.root / rel
            if not path.is_file():
                continue
            if rel not in self._roots:
                source = Source(label, path)
                self._scan(source)
                self._roots[rel] = source
            out.append(self._roots[rel])
        return out

    def unresolved(self, roots=None):
        """(module, line, code) of every dynamic kpnthings import whose target is not a constant,
        in the library and in `roots` (default: every root file read so far)."""
        out = []
        roots = list(self._roots.values()) if roots is None else roots
        for source in list(self.sources.values()) + roots:
            out += [(source.name, line, text) for line, text in source.unresolved]
        return out

    def closure(self, config, board=None):
        """({module: reason}, {module: why not}) for `config`, in the order modules were reached."""
        board = board if board is not None else config.get("board")
        reasons = {}
        refused = {}
        queue = deque()
        roots = self.root_sources(board)
        for source in roots:
            for imp in source.imports:
                ok, why = follows(imp, source.name, True, config)
                if ok:
                    queue.append((imp.target, why))
                else:
                    refused.setdefault(imp.target, why)
        for where, line, _text in self.unresolved(roots):
            # A name the source computes: every module could be meant, so every module goes.
            for name in self.modules:
                queue.append((name, "dynamic import in %s, line %d" % (where, line)))
        while queue:
            name, reason = queue.popleft()
            if name in reasons:
                continue
            reasons[name] = reason
            parent = name.rpartition(".")[0]
            if parent:
                queue.append((parent, "package of " + name))
            importer_core = optional_condition(name) is None
            for imp in self.sources[name].imports:
                ok, why = follows(imp, name, importer_core, config)
                if ok:
                    queue.append((imp.target, why))
                else:
                    refused.setdefault(imp.target, why)
        return reasons, refused


def follows(imp, importer, importer_core, config):
    """(True, reason) if this import brings its target in for `config`, else (False, why not)."""
    if imp.types is not None:
        kinds = [k for k in sensor_types(config) if imp.takes(k)]
        if not kinds:
            names, other = imp.types
            if other:
                return False, "no sensor in the config takes its branch in %s" % importer
            return False, "no sensor of type %s in the config" % " or ".join(sorted(names))
        return True, "sensor type %s (imported by %s)" % (", ".join(kinds), importer)
    condition = optional_condition(imp.target)
    if condition is not None and imp.lazy and importer_core:
        holds, why = condition(config)
        if not holds:
            return False, why
        return True, "%s (imported by %s)" % (why, importer)
    return True, "imported by " + importer


_graphs = {}


def import_graph(root=None):
    """The ImportGraph of a checkout, parsed again only when a library file changed."""
    root = Path(root) if root else build.repo_root()
    stamp = []
    files = [root / "lib" / rel for rel in build.library_sources(root)]
    files += sorted((root / "firmware").glob("*.py")) + sorted((root / BOARDS_PACKAGE).glob("*.py"))
    for path in files:
        st = path.stat()
        stamp.append((str(path), st.st_mtime_ns, st.st_size))
    key = str(root.resolve())
    cached = _graphs.get(key)
    if cached is None or cached[0] != stamp:
        cached = _graphs[key] = (stamp, ImportGraph(root))
    return cached[1]


def analyse(config, root=None):
    """(module_set, left_out) for `config` from one reading of the tree (see those two)."""
    graph = import_graph(root)
    reasons, refused = graph.closure(config)
    chosen = sorted((graph.modules[name], reason) for name, reason in reasons.items())
    imported = set()
    for source in graph.sources.values():
        imported.update(imp.target for imp in source.imports)
    rest = []
    for name, rel in graph.modules.items():
        if name in reasons:
            continue
        if name in refused:
            why = refused[name]
        elif name in imported:
            why = "only imported by modules this config leaves out"
        else:
            why = "nothing imports it"
        rest.append((rel, why))
    return chosen, sorted(rest)


def module_set(config, root=None):
    """[(path relative to lib/, reason)] of the library modules `config` needs on the board,
    sorted by path. Reasons read like "imported by kpnthings.device", "transport https
    (imported by kpnthings.wiring)" or "sensor type dht22 (imported by kpnthings.sensors)"."""
    return analyse(config, root)[0]


def left_out(config, root=None):
    """[(path relative to lib/, why)] of the library modules `config` does not need, sorted."""
    return analyse(config, root)[1]


def unresolved_imports(root=None, board=None):
    """Dynamic imports of kpnthings modules whose target the source does not spell out; each one
    makes the whole library deploy. [(module, line, code)]; empty on a healthy tree."""
    graph = import_graph(root)
    return graph.unresolved(graph.root_sources(board))
