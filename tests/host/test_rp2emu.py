"""The real MicroPython 1.28 RPI_PICO_W firmware on an emulated RP2040 (kpnthings_tools.rp2emu).

Skipped unless RP2EMU names the emulator's folder (../shared/tools/rp2emu; .ci/run sets it where
it exists). With it set, a missing node or npm fails these tests instead of skipping them.
- the runner: a script runs on the rp2 port, files reach its LittleFS, marks carry CPU cycles;
- the chip builds the same pack bytes as CPython, and its tokens are KPN's;
- the firmware booted from its deployed set for 20 cycles with the Wi-Fi chip failing: every
  reading stored on the chip's LittleFS, nothing raised out of the loop, a flat heap;
- the portable SenML encode tests, run on the chip by tests/mp_run.py (float32, as on a board).
"""

import ast
import hashlib
import json
import os
from pathlib import Path

import pytest

from kpnthings import batch
from kpnthings_tools import bench_rp2, build, provision, rp2emu

ROOT = Path(__file__).resolve().parents[2]
PORTABLE = ROOT / "tests" / "portable"
# .mpy trees and filesystem images, kept between sessions: an image is rebuilt only when one of
# its files changes (rp2emu.build_image), which saves the upload (about 10 s).
WORK = ROOT / "build" / "rp2emu-tests"
# Portable test modules run on the chip, and tests expected to fail there (none today).
ON_CHIP = ("test_senml_encode", "test_senml_numbers")
KNOWN_CHIP_FAILURES = {}

needs_emulator = pytest.mark.skipif(
    not os.environ.get(rp2emu.ENV), reason="RP2EMU is not set (the emulated RP2040's folder)"
)


def test_unset_variable_says_what_to_set():
    with pytest.raises(rp2emu.Unavailable, match="RP2EMU is not set"):
        rp2emu.source_dir({})


def test_folder_without_the_runner_is_refused(tmp_path):
    with pytest.raises(rp2emu.Unavailable, match=r"run-pico\.mjs"):
        rp2emu.source_dir({"RP2EMU": str(tmp_path)})


def test_folders_are_made_parents_first():
    remotes = ["/lib/kpnthings/sensors/dht.mpy", "/config.json", "lib/boards/x.mpy"]
    assert rp2emu._folders(remotes) == [
        "/lib",
        "/lib/kpnthings",
        "/lib/kpnthings/sensors",
        "/lib/boards",
    ]


def _constants(path, names):
    tree = ast.parse(Path(path).read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in names:
                out[node.targets[0].id] = ast.unparse(node.value)
    return out


def test_chip_cpu_script_uses_the_reference_data_of_mp_bench():
    names = ("UUID", "BN", "SECRET", "BT", "READINGS")
    chip = _constants(ROOT / "bench" / "rp2" / "cpu.py", names)
    host = _constants(ROOT / "bench" / "mp_bench.py", names)
    assert set(chip) == set(names)
    assert chip == host
    assert ast.literal_eval(chip["SECRET"]) == bench_rp2.REFERENCE_SECRET


def _fake_firmware_run(monkeypatch, stdout, erases=3):
    def run(*args, **kwargs):
        stats = {"flash": {"eraseCalls": erases, "programCalls": 9}}
        return rp2emu.Result(0, stdout, "", stats, 1.0)

    monkeypatch.setattr(bench_rp2.rp2emu, "run", run)


def _cycles(heap, reads=1):
    return "".join("@@HEAP %d\n[kpn] uplink\n@@READ %d\n" % (h, reads) for h in heap)


def test_report_of_a_good_run(monkeypatch, tmp_path):
    _fake_firmware_run(monkeypatch, _cycles([9000] + [8000] * 19) + "@@STORED 20\n")
    out = bench_rp2.measure_firmware_run("img", tmp_path, provision.new_identity())
    assert out["ok"], out["problems"]
    assert (out["cycles_run"], out["readings_taken"], out["stored"]) == (20, 20, 20)
    assert out["heap_spread_bytes"] == 0
    assert out["erases_per_reading"] == 0.15


def test_report_names_lost_readings_and_a_growing_heap(monkeypatch, tmp_path):
    heap = [8000 + 64 * i for i in range(20)]  # 64 B a cycle: 1 KB over the run
    _fake_firmware_run(monkeypatch, _cycles(heap, reads=2) + "@@STORED 39\n")
    out = bench_rp2.measure_firmware_run("img", tmp_path, provision.new_identity())
    assert not out["ok"]
    assert out["problems"] == ["39 of 40 readings stored", "heap not flat: spread %d B" % (64 * 17)]
    table = bench_rp2.rows({"heap": _heap_result(), "cpu": {}, "firmware_run": out})
    assert [r[-1] for r in table if "readings stored" in r[0]] == ["NOT met"]


def test_report_of_a_firmware_that_dies_at_boot(monkeypatch, tmp_path):
    _fake_firmware_run(monkeypatch, "@@RAISED OSError: [Errno 1] EPERM\n@@STORED 0\n")
    out = bench_rp2.measure_firmware_run("img", tmp_path, provision.new_identity())
    assert not out["ok"]
    assert out["problems"][0] == "the firmware ended: OSError: [Errno 1] EPERM"
    assert "0 of 20 cycles ran" in out["problems"]
    table = bench_rp2.rows({"heap": _heap_result(), "cpu": {}, "firmware_run": out})
    assert all(len(row) == 6 for row in table)


def _heap_result():
    return {"baseline": {"bytes": 19000}, "ours_imports": {"bytes": 79000}, "at_rest": {}}


# ---- on the emulated chip ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def emu():
    try:
        return rp2emu.prepare()
    except rp2emu.Unavailable as e:
        pytest.fail("RP2EMU is set but the emulator cannot run: %s" % e)


@pytest.fixture(scope="module")
def ours_tree():
    """lib/kpnthings and the Pico W board module as .mpy for the RP2040 (armv6m)."""
    tree = WORK / "ours"
    build.compile_lib("armv6m", tree)
    for name in ("__init__", "pico_w"):
        build.compile_file(
            ROOT / "boards" / (name + ".py"),
            tree / "boards" / (name + ".mpy"),
            "armv6m",
            source_name="boards/%s.py" % name,
        )
    return tree


@pytest.fixture(scope="module")
def identity():
    return provision.new_identity()


@pytest.fixture(scope="module")
def deployed_image(emu, ours_tree, identity):
    """The chip's filesystem with what a deploy of the bench's HTTPS config puts there."""
    modules, _source = bench_rp2.deployed_modules(bench_rp2.bench_config(identity, 1))
    WORK.mkdir(parents=True, exist_ok=True)
    files = bench_rp2.firmware_files(ours_tree, modules, WORK)
    image = WORK / "deployed.img"
    r = rp2emu.build_image(files, image, emu=emu)
    assert r.ok, r.error()
    return image


@pytest.fixture(scope="module")
def library_image(emu, ours_tree, identity):
    """The deployed set plus the pack API (senml.Pack, the decoder) that the CPU script's Pack
    path and the SenML tests import."""
    modules, _source = bench_rp2.deployed_modules(bench_rp2.bench_config(identity, 1))
    WORK.mkdir(parents=True, exist_ok=True)
    files = bench_rp2.firmware_files(ours_tree, bench_rp2.library_modules(modules), WORK)
    image = WORK / "library.img"
    r = rp2emu.build_image(files, image, emu=emu)
    assert r.ok, r.error()
    return image


@needs_emulator
def test_runner_runs_a_script_on_the_rp2_port(emu, tmp_path):
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)) * 3)
    script = tmp_path / "probe.py"
    script.write_text(
        "import sys\n"
        "print('@@MARK a')\n"
        "print('platform', sys.platform, sys.implementation._machine)\n"
        "with open('/lib/deep/data.bin', 'rb') as f:\n"
        "    print('size', len(f.read()))\n"
        "print('@@MARK b')\n"
    )
    r = rp2emu.run(script, puts=[(data, "/lib/deep/data.bin")], emu=emu)
    assert r.ok, r.error()
    assert r.lines("platform") == ["rp2 Raspberry Pi Pico W with RP2040"]
    assert r.lines("size") == ["768"]
    assert r.mark_cycles("a", "b") > 0
    assert r.stats["cpu_cycles"] > r.mark_cycles("a", "b")
    assert r.flash["programCalls"] > 0  # the put went to the chip's flash


@needs_emulator
def test_a_raising_script_is_reported_with_its_traceback(emu):
    r = rp2emu.run(code="print('before')\nraise ValueError('on the chip')\n", emu=emu)
    assert r.returncode == rp2emu.SCRIPT_RAISED
    assert "before" in r.stdout
    assert "ValueError: on the chip" in r.stderr
    assert "the script raised" in r.error()


@needs_emulator
def test_prepare_keeps_an_up_to_date_copy(emu):
    stamp = emu / rp2emu._STAMP
    before = stamp.stat().st_mtime_ns
    assert rp2emu.prepare() == emu
    assert stamp.stat().st_mtime_ns == before


@needs_emulator
def test_images_keep_files_between_runs(emu, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("first")
    b.write_text("second" * 500)
    image = tmp_path / "fs.img"
    r = rp2emu.build_image([(a, "/x/a.txt"), (b, "/x/y/b.txt")], image, emu=emu)
    assert r.ok, r.error()
    again = rp2emu.build_image([(a, "/x/a.txt"), (b, "/x/y/b.txt")], image, emu=emu)
    assert again.host_s == 0  # reused, not uploaded again
    r = rp2emu.run(
        code="print('a', open('/x/a.txt').read())\nprint('b', len(open('/x/y/b.txt').read()))\n",
        fs_in=image,
        emu=emu,
    )
    assert r.ok, r.error()
    assert r.lines("a ") == ["first"]
    assert r.lines("b ") == ["3000"]


@needs_emulator
def test_the_chip_builds_the_hosts_pack_bytes_and_tokens(library_image):
    cpu = bench_rp2.measure_cpu(library_image, "ours", n=2)
    assert "error" not in cpu, cpu.get("error")
    secret = bench_rp2.REFERENCE_SECRET
    bn = "urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:"
    readings = (
        ("temperature", "Cel", 21.5),
        ("humidity", "%RH", 55.3),
        ("batteryVoltage", "V", 3.71),
    )
    records = [{"n": n, "u": u, "v": v, "t": 1700000000} for n, u, v in readings]
    body, used = batch.build_pack(bn, records, 1024)
    assert used == 3
    assert cpu["bodies"]["firmware"].encode() == body
    for label in ("firmware", "pack"):
        want = hashlib.sha256(cpu["bodies"][label].encode() + secret.encode()).hexdigest()
        assert cpu["tokens"][label] == want
        assert cpu[label + "_cycles"] > 0


@needs_emulator
def test_firmware_runs_20_cycles_on_the_pico_w_with_wifi_failing(deployed_image, identity):
    """Issue 17 finding 2 on the real rp2 port: the Wi-Fi driver raises; the firmware must keep
    taking readings and store every one on the chip's LittleFS, with a flat heap."""
    WORK.mkdir(parents=True, exist_ok=True)
    out = bench_rp2.measure_firmware_run(deployed_image, WORK, identity)
    log = "\n".join(out["log_tail"])
    assert out["raised"] is None, "the firmware raised out of its loop: %s\n%s" % (
        out["raised"],
        log,
    )
    assert out["exit"] is None, "the firmware exited (%s):\n%s" % (out["exit"], log)
    assert out["cycles_run"] == bench_rp2.CYCLES, log
    assert out["readings_taken"] >= bench_rp2.CYCLES, log  # the Pico W's board: 1 per cycle
    assert out["stored"] == out["readings_taken"], log
    assert out["heap_flat"], "heap after collection per cycle: %s" % out["heap_samples"]
    assert out["ok"], out["problems"]


# ---- the portable SenML encode tests, on the chip --------------------------------------------


def _portable_tests(module):
    tree = ast.parse((PORTABLE / (module + ".py")).read_text())
    return sorted(
        n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    )


@pytest.fixture(scope="module")
def chip_results(emu, library_image):
    """{(module, test): record} from tests/mp_run.py run on the chip, one run per module."""
    files = []
    for name in ("_support", *ON_CHIP):
        mpy = WORK / "portable" / (name + ".mpy")
        # Not -O3 as the library is: mpy-cross drops every assert statement at -O1 and above,
        # and the tests would pass whatever the chip computed.
        build.compile_file(
            PORTABLE / (name + ".py"),
            mpy,
            "armv6m",
            source_name="tests/portable/%s.py" % name,
            keep_lines=True,
        )
        files.append((mpy, "/lib/%s.mpy" % name))
    image = WORK / "portable.img"
    r = rp2emu.build_image(files, image, base=library_image, emu=emu)
    assert r.ok, r.error()
    results = {}
    for module in ON_CHIP:
        argv = "import sys\nsys.argv[:] = ['mp_run', %r]\n" % module
        r = rp2emu.run(ROOT / "tests" / "mp_run.py", code=argv, fs_in=image, emu=emu)
        assert r.ok, r.error()
        for line in r.stdout.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            results[(rec["m"], rec["t"])] = rec
    return results


@needs_emulator
@pytest.mark.parametrize(
    "module,test", [(m, t) for m in ON_CHIP for t in _portable_tests(m)], ids=lambda x: x
)
def test_portable_test_on_the_chip(chip_results, module, test):
    rec = chip_results.get((module, test)) or chip_results.get((module, "*"))
    assert rec is not None, "no result from the chip for %s.%s" % (module, test)
    if rec["r"] == "skip":
        pytest.skip(rec["e"] or "skipped on rp2")
    if (module, test) in KNOWN_CHIP_FAILURES:
        if rec["r"] == "pass":
            pytest.fail("now passes on the chip: drop it from KNOWN_CHIP_FAILURES")
        pytest.xfail(KNOWN_CHIP_FAILURES[(module, test)])
    assert rec["r"] == "pass", rec["e"]
