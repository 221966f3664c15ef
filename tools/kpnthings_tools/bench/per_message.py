"""Per message: CPU and bytes allocated, ours beside micropython-senml's, by bench/mp_bench.py.

- ours: kpnthings.senml.Pack + encode + token; the firmware's own path (reading dicts through
  kpnthings.batch.write_pack into the body buffer, then the token);
- baseline: micropython-senml's SenmlPack + SenmlRecord + to_json (and the same token).

CPU is measured on the 64-bit port only (the host's timings are noise; the emulated RP2040's
cycles are the CPU figure that counts). Bytes allocated are measured on the 64-bit port and on
the 32-bit ESP32 model, where objects have a board's size.
"""

import json

from . import runtimes, trees

TARGET_CPU = 0.5
TARGET_ALLOC = 1.0
CPU_ROUNDS = 3


def mp_json(runtime, path_dirs, *args):
    proc = runtimes.run(runtime, path_dirs, trees.BENCH / "mp_bench.py", *args)
    if proc.returncode != 0:
        raise SystemExit(
            "bench script failed on %s:\n%s" % (runtime.name, proc.stdout + proc.stderr)
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_alloc(runtime, ours_dir, base_dir):
    """Bytes allocated per message on `runtime`: ours (Pack path and firmware path) and the
    baseline's build + to_json."""
    o = mp_json(runtime, [ours_dir], "ours", "heap")
    b = mp_json(runtime, [base_dir], "baseline", "heap")
    return {
        "runtime": runtime.name,
        "ours_bytes": o["bytes_per_message"],
        "micropython_senml_bytes": b["bytes_per_message"],
        "micropython_senml_build_to_json_bytes": b["bytes_build_to_json"],
        "ratio": round(o["bytes_per_message"] / b["bytes_build_to_json"], 3),
        "device_path_bytes": o["bytes_device_path"],
        "device_path_ratio": round(o["bytes_device_path"] / b["bytes_build_to_json"], 3),
        "target": TARGET_ALLOC,
    }


def measure_cpu_heap(ours_dir, base_dir):
    """The 64-bit figures: CPU per message and bytes allocated per message."""
    # Alternate the two a few times and keep each one's best: a busy machine slows whichever
    # runs during the busy moment, and a single pair would put that into the ratio.
    cpu_o = cpu_b = cpu_d = None
    for _ in range(CPU_ROUNDS):
        o = mp_json(runtimes.MP64, [ours_dir], "ours", "cpu")
        b = mp_json(runtimes.MP64, [base_dir], "baseline", "cpu")["us_per_message"]
        cpu_o = o["us_per_message"] if cpu_o is None else min(cpu_o, o["us_per_message"])
        cpu_d = o["us_device_path"] if cpu_d is None else min(cpu_d, o["us_device_path"])
        cpu_b = b if cpu_b is None else min(cpu_b, b)
    return {
        "cpu": {
            "ours_us": round(cpu_o, 1),
            "micropython_senml_us": round(cpu_b, 1),
            "ratio": round(cpu_o / cpu_b, 3),
            "target": TARGET_CPU,
            "device_path_us": round(cpu_d, 1),
        },
        "heap": measure_alloc(runtimes.MP64, ours_dir, base_dir),
    }
