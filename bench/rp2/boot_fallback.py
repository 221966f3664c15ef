"""Heap at rest without the loop: the firmware's boot, with the Wi-Fi wait cut short.

For as long as the firmware's boot dies on this chip's failing Wi-Fi driver, the heap-at-rest
figure comes from here instead of from the loop: the deployed modules imported (PRELOAD, set
before it runs), then kpnthings.wiring.boot() as kpnthings.app.main() calls it, except that
WiFi.wait() returns False at once (as when no access point answers in the boot wait), then the
boot-only modules unloaded as app.main() does, then gc.collect(); gc.mem_alloc() (@@HEAP).
"""

import gc

for name in PRELOAD:  # noqa: F821 (set by the runner)
    __import__(name)
from kpnthings import app, wifi, wiring  # noqa: E402


def _no_link(self, timeout_ms, feed=None, step_ms=100):
    return False


wifi.WiFi.wait = _no_link
device, transport = wiring.boot(print)
del wiring
app.unload("wiring", "config")
gc.collect()
print("@@HEAP", gc.mem_alloc())
