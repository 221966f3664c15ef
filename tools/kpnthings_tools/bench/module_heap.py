"""Per-module heap: what each lib module holds once imported (bytecode copied into RAM, its
functions, classes, tables and strings), as gc.mem_alloc() deltas after gc.collect(), from the
bench's .mpy tree, each module imported after the modules it imports at its top level.

Also the baseline: what micropython-senml and the port's frozen `requests` hold, the modules a
user would pick instead for an HTTPS uplink.
"""

import ast
import json
from pathlib import Path

from . import runtimes, trees

LIB = trees.ROOT / "lib"


def module_name(path):
    """lib/kpnthings/sensors/dht.py -> kpnthings.sensors.dht; __init__ -> the package."""
    rel = Path(path).relative_to(LIB).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top_level_imports(path):
    """The kpnthings modules a source file imports at its top level (also inside try/if at the
    top level), not inside functions: what importing it pulls in at once."""
    tree = ast.parse(Path(path).read_text())
    found = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found.update(node.module + "." + a.name for a in node.names)
            elif isinstance(node, (ast.Try, ast.If)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))

    visit(tree.body)
    return found


def dependency_order(lib=LIB):
    """Every module of lib/kpnthings, each after the lib modules it imports at its top level
    (and after its package); ties in name order."""
    sources = {module_name(p): p for p in sorted((lib / "kpnthings").rglob("*.py"))}
    deps = {}
    for name, path in sources.items():
        wanted = {d for d in top_level_imports(path) if d in sources and d != name}
        parent = name.rpartition(".")[0]
        if parent:
            wanted.add(parent)
        deps[name] = wanted
    order, done = [], set()

    def place(name, seen=()):
        if name in done or name in seen:
            return
        for dep in sorted(deps[name]):
            place(dep, seen + (name,))
        done.add(name)
        order.append(name)

    for name in sorted(sources):
        place(name)
    return order


def measure(runtime, arch):
    """{"modules": {name: bytes}, "errors": {name: text}, "order": [...], "total": bytes}."""
    order = dependency_order()
    out = _imported(runtime, [trees.fakes(arch), trees.ours(arch)], order)
    if "error" not in out:
        out["order"] = order
    return out


def _imported(runtime, path_dirs, names):
    """bench/module_heap.py on `runtime`: the heap each of `names` holds once imported."""
    proc = runtimes.run(runtime, path_dirs, trees.BENCH / "module_heap.py", *names)
    if proc.returncode != 0:
        return {"error": (proc.stdout + proc.stderr)[-3000:], "runtime": runtime.name}
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    sizes = {name: size for name, size, _ in data["modules"]}
    errors = {name: err for name, _, err in data["modules"] if err}
    return {
        "runtime": runtime.name,
        "modules": sizes,
        "errors": errors,
        "total": sum(sizes.values()),
    }


BASELINE_MODULES = ("senml", "requests")


def measure_baseline(runtime, arch):
    """What micropython-senml and the frozen requests hold once imported, same method."""
    return _imported(runtime, [trees.baseline(arch)], BASELINE_MODULES)
