"""Every import of a kpnthings module in the library, firmware and board source, read with `ast`.

`kpnthings_tools.modules` works out a config's deploy set from this graph. Each import is collected
wherever it sits (module level, inside a function, in a branch): `import kpnthings.x`,
`from kpnthings import x`, `from kpnthings.x import y`, relative imports, and helpers such as
`__import__("kpnthings." + name)` called with a constant name. An import inside a function or a
branch is marked lazy. In the kpnthings.sensors package, an import in a branch of an if/elif
chain on a sensor's type (`if kind in ("dht22", "dht11"): from kpnthings.sensors import dht`)
also records which types take that branch.
"""

import ast
from pathlib import Path

from . import build

PACKAGE = build.PACKAGE_NAME
# The files the board runs by name, relative to the repository root; they import the rest.
FIRMWARE_ROOTS = ("firmware/main.py", "firmware/boot.py", "firmware/boot_update.py")
BOARDS_PACKAGE = "boards"
# The package whose if/elif chains on a sensor's type choose its driver module.
SENSORS_PACKAGE = PACKAGE + ".sensors"


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
