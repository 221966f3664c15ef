"""The .mpy trees the bench loads, built as a board gets them (mpy-cross -O3, -march per board).

Per architecture, under build/bench/:
- ours/<arch>/kpnthings/...: lib/kpnthings, plus boards/__init__ and boards/unix;
- baseline/<arch>/senml/...: micropython-senml, with a stand-in for the cbor2 it imports, and
  bench/baseline_cycle.py (a user's own cycle with it, the full-cycle figures' baseline);
- fakes/<arch>/: the host stand-ins for built-in modules (machine, network), as .mpy: on a board
  they live in the firmware and cost no heap, while compiling them from .py here would put tens
  of KB of compiler heap into every heap figure;
- benchboard/<arch>/benchboard.mpy: boards/unix.py with bench/benchboard_hook.py appended.
"""

import importlib.util
from pathlib import Path

from .. import build

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "bench"
OUT = ROOT / "build" / "bench"
# Which .mpy tree stands for which board (bytecode is the same for both; -march only matters
# for native code, which lib/ has none of).
ARCH_FOR_MODEL = {"esp32": "xtensawin", "pico_w": "armv6m", "host": "xtensawin"}
BENCH_BOARD = "benchboard"


def baseline_src_dir():
    """micropython-senml's package folder (a dev dependency); found, not imported (it imports
    cbor2 at the top)."""
    spec = importlib.util.find_spec("senml")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("micropython-senml is not installed: run `make bench`")
    return Path(next(iter(spec.submodule_search_locations)))


def ours(arch):
    return OUT / "ours" / arch


def baseline(arch):
    return OUT / "baseline" / arch


def fakes(arch):
    return OUT / "fakes" / arch


def bench_board(arch):
    return OUT / "benchboard" / arch


def build_trees(arch):
    """Build every tree for `arch`; returns (ours_dir, baseline_dir, ours_sizes)."""
    sizes = build.compile_lib(arch, ours(arch))
    for board in ("__init__", "unix"):
        build.compile_file(
            ROOT / "boards" / (board + ".py"),
            ours(arch) / "boards" / (board + ".mpy"),
            arch,
            source_name="boards/%s.py" % board,
        )
    for src in sorted(baseline_src_dir().glob("*.py")):
        build.compile_file(src, baseline(arch) / "senml" / (src.stem + ".mpy"), arch)
    build.compile_file(BENCH / "stubs" / "cbor2.py", baseline(arch) / "cbor2.mpy", arch)
    build.compile_file(BENCH / "baseline_cycle.py", baseline(arch) / "baseline_cycle.mpy", arch)
    for src in sorted((ROOT / "tests" / "fakes").glob("*.py")):
        build.compile_file(src, fakes(arch) / (src.stem + ".mpy"), arch, source_name=src.name)
    board_src = OUT / "benchboard" / (BENCH_BOARD + ".py")
    board_src.parent.mkdir(parents=True, exist_ok=True)
    board_src.write_text(
        (ROOT / "boards" / "unix.py").read_text()
        + "\n\n"
        + (BENCH / "benchboard_hook.py").read_text()
    )
    build.compile_file(
        board_src,
        bench_board(arch) / (BENCH_BOARD + ".mpy"),
        arch,
        source_name="boards/%s.py" % BENCH_BOARD,
    )
    return ours(arch), baseline(arch), sizes
