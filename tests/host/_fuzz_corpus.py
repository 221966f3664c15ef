"""The corpus a fuzz test writes for the portable tests to replay under MicroPython.

Shared by test_http_fuzz.py and test_downlink_fuzz.py, each run as a script with --write-corpus.
A corpus is the seed cases plus generated ones: hypothesis explores the test's strategy,
derandomized so that every regeneration writes the same file, and keeps the first few cases of
every distinct signature (what happened, in short), so the file covers each behaviour without
growing with the number of examples.
"""

import json

from hypothesis import HealthCheck, given, settings


def add_generated(cases, strategy, entry, signature, per_signature, examples):
    """Append to `cases` up to `per_signature` generated cases per signature, from `examples`
    draws of `strategy`. entry(drawn) gives the case dict (with its "expect"), or None to pass
    it over; signature(expect) says which behaviour it shows."""
    seen = {}

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=True,  # the same corpus on every regeneration
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def explore(drawn):
        d = entry(drawn)
        if d is None:
            return
        sig = signature(d["expect"])
        if seen.get(sig, 0) < per_signature:
            seen[sig] = seen.get(sig, 0) + 1
            d["name"] = "generated %d" % len(cases)
            cases.append(d)

    explore()
    return cases


def main(argv, build_corpus, path, doc):
    """`--write-corpus` writes build_corpus() to `path`; anything else prints `doc`."""
    if argv == ["--write-corpus"]:
        corpus = build_corpus()
        path.write_text(json.dumps(corpus, indent=1, sort_keys=True) + "\n")
        print("wrote %d cases to %s" % (len(corpus["cases"]), path))
    else:
        print(doc)
