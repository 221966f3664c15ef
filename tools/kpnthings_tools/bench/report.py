"""The tables `make bench` prints, in the README's markdown shape: figure | ours | baseline |
ratio | target | met. Each 32-bit figure of issue 15 is followed by the same figure on the 64-bit
port; a figure whose runtime is not there says so instead of a number. The rows come from
report_issue15 (issue 15's targets, in its order), update_sig (issue 20's signature check),
report_earlier (the figures before it), deep_sleep (issue 20's duty cycle and battery estimate)
and health (issue 20: the health records' bytes per hour); table_format holds the shape every
row shares."""

from . import deep_sleep
from .health import rows as health_rows
from .report_earlier import earlier_rows
from .report_issue15 import issue15_rows

# HEADER, NOT_MEASURED and markdown: the names callers know from here.
from .table_format import HEADER, NOT_MEASURED, markdown  # noqa: F401
from .update_sig import rows as update_rows


def table(r):
    return markdown(
        [HEADER]
        + issue15_rows(r)
        + update_rows(r)
        + earlier_rows(r)
        + deep_sleep.table_rows(r)
        + health_rows(r.get("health"))
    )


def module_table(r):
    """What each module holds once imported: 32-bit (ESP32 model) beside the 64-bit port."""
    mh = r.get("module_heap", {})
    stock = mh.get("micropython32-stock", {})
    host = mh.get("micropython64", {})
    order = host.get("order") or stock.get("order") or []
    deployed = {p for p, _ in r["flash"].get("deployed_set", [])}
    rows = [("module", "micropython32-stock (B)", "64-bit port (B)", "deployed for HTTPS")]
    sums = {"all": [0, 0], "https": [0, 0]}
    for name in order:
        a = stock.get("modules", {}).get(name)
        b = host.get("modules", {}).get(name)
        path = _lib_path(name)
        in_set = path in deployed
        for key in ("all", "https") if in_set else ("all",):
            sums[key][0] += a or 0
            sums[key][1] += b or 0
        err = stock.get("errors", {}).get(name) or host.get("errors", {}).get(name)
        rows.append(
            (
                name + (" (%s)" % err if err else ""),
                a if a is not None else "-",
                b if b is not None else "-",
                "yes" if in_set else "",
            )
        )
    sa = "-" if not stock.get("modules") else None
    rows.append(("total, every module", sa or sums["all"][0], sums["all"][1], ""))
    rows.append(("total, deployed set for HTTPS", sa or sums["https"][0], sums["https"][1], ""))
    base = r.get("baseline_imports", {})
    bs = base.get("micropython32-stock", {})
    bh = base.get("micropython64", {})
    for name in ("senml", "requests"):
        rows.append(
            (
                "baseline: %s" % name,
                bs.get("modules", {}).get(name, "-"),
                bh.get("modules", {}).get(name, "-"),
                "",
            )
        )
    return markdown(rows)


def _lib_path(module):
    """kpnthings.sensors -> kpnthings/sensors/__init__.py; kpnthings.auth -> kpnthings/auth.py."""
    from .module_heap import LIB

    rel = module.replace(".", "/")
    if (LIB / rel / "__init__.py").exists():
        return rel + "/__init__.py"
    return rel + ".py"
