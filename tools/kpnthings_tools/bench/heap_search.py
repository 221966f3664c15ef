"""The smallest `-X heapsize` at which a run passes, found by bisection and then made stable.

Success is not monotonic in the heap size: where the garbage collector runs, and so how the heap
fragments, changes with the size, and a run can pass at N bytes and fail at N + 4 KB. The figure
reported is the smallest size from which every size up to STABLE_SPAN above it passes too
(probed every STABLE_STEP); the plain bisection result is kept beside it.
"""

STABLE_STEP = 1024
STABLE_SPAN = 16 * 1024
LOW = 4 * 1024
HIGH = 256 * 1024


def smallest_stable_heap(ok, lo=LOW, hi=HIGH):
    """`ok(heapsize) -> (passed, detail)`. Returns {"min_heap_bytes", "first_pass_bytes",
    "resolution"}, or {"error": ...} when even `hi` fails."""
    passed, detail = ok(hi)
    if not passed:
        return {"error": "fails even with %d bytes of heap:\n%s" % (hi, _tail(detail))}
    while hi - lo > 512:
        mid = (lo + hi) // 2 // 256 * 256
        if ok(mid)[0]:
            hi = mid
        else:
            lo = mid
    bisected = stable = hi
    size = hi + STABLE_STEP
    while size <= stable + STABLE_SPAN and size < HIGH:
        if not ok(size)[0]:
            stable = size + STABLE_STEP  # a failure above: the stable range starts higher
        size += STABLE_STEP
    return {"min_heap_bytes": stable, "first_pass_bytes": bisected, "resolution": STABLE_STEP}


def _tail(text, n=3000):
    text = text or ""
    return text[-n:]
