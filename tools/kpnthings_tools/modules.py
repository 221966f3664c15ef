"""The library modules a config needs on the board: the deploy set, worked out from the source.

A board pays heap and flash for every module it holds, so `kpnthings deploy` copies only the
modules the firmware can import with this config. The set is computed, not listed:

1. Every file of lib/kpnthings is parsed with `ast` (kpnthings_tools.library_imports), and every
   import of a kpnthings module is collected wherever it sits (module level, inside a function,
   in a branch): `import kpnthings.x`, `from kpnthings import x`, `from kpnthings.x import y`,
   relative imports, and helpers such as `__import__("kpnthings." + name)` called with a
   constant name.
2. The closure is taken from the firmware's roots: firmware/main.py and boot.py (and
   boot_update.py, deployed as boot.py for a config with update: its import is lazy, in a
   try, so it counts only for such a config), and the board
   package with the one board module the config names (boards/<board>.py, whose `signal()`
   brings kpnthings.status_led where a board blinks an LED). A module no root reaches is never
   deployed (tests/host/test_architecture.py allows none in lib/); a module the lead adds is
   followed like any other.
3. A few modules serve only some configs: they are the modules of the optional components in
   kpnthings_tools.components (https, mqtt, sensors, field, deepsleep, health), whose table
   gives the config condition that brings each in. An import of one from a lazy place in a core
   module (inside a function or a branch) counts only when that condition holds. An import at
   module level always counts: it runs whenever its module loads. A module of an optional
   component that is in the set pulls in what it imports, whatever its component.
4. Sensor drivers are chosen per sensor type by the if/elif chain in the kpnthings.sensors
   package (`if kind in ("dht22", "dht11"): from kpnthings.sensors import dht`). That chain is
   read from the source too, so an import in one of its branches counts only when the config
   lists a sensor whose type takes that branch.

`module_set(config)` gives the set with the reason each module is in it; `left_out(config)` says
why each other module stays on the host.
"""

from collections import deque

from . import components
from .components import sensor_types
from .library_imports import import_graph


def optional_condition(module):
    """The condition function of the optional component `module` belongs to, or None when a lazy
    import of it always counts (core, a component no config selects, a module in no component).
    A driver's is the sensors list's: which driver a sensor takes is read from the dispatch."""
    component = components.component_of(module)
    if component is None:
        return None
    if component.when is components.SENSOR_TYPE:
        return components.has_sensors
    if callable(component.when):
        return component.when
    return None


# -- the set for one config ----------------------------------------------------------------------


def closure(graph, config, board=None):
    """({module: reason}, {module: why not}) for `config` over an ImportGraph, in the order
    modules were reached."""
    board = board if board is not None else config.get("board")
    reasons = {}
    refused = {}
    queue = deque()
    roots = graph.root_sources(board)
    for source in roots:
        for imp in source.imports:
            ok, why = follows(imp, source.name, True, config)
            if ok:
                queue.append((imp.target, why))
            else:
                refused.setdefault(imp.target, why)
    for where, line, _text in graph.unresolved(roots):
        # A name the source computes: every module could be meant, so every module goes.
        for name in graph.modules:
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
        for imp in graph.sources[name].imports:
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


def analyse(config, root=None):
    """(module_set, left_out) for `config` from one reading of the tree (see those two)."""
    graph = import_graph(root)
    reasons, refused = closure(graph, config)
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
