"""Runs under the MicroPython unix port: send bodies through kpnthings.client, print the Results.

Usage: echo '<json args>' | MICROPYPATH=lib:.frozen micropython tests/host/mp_client_send.py
The arguments come on stdin because this unix-port build crashes ("FATAL: uncaught NLR") when a
command-line argument is longer than about 256 bytes.
Args as in tests/host/_http_servers.py send_cpython; prints one JSON line (a list of results,
or {"construct_error": text}).
"""

import json
import sys

from kpnthings import client


def _record(x):
    if isinstance(x, dict):
        # vd values are bytes, which JSON cannot carry: hex them.
        return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in x.items()}
    d = {}
    for k in dir(x):
        if not k.startswith("_"):
            v = getattr(x, k)
            if not callable(v):
                d[k] = v
    return d


def main():
    args = json.loads(sys.stdin.read())
    cadata = None
    if args.get("ca_path"):
        with open(args["ca_path"], "rb") as f:
            cadata = f.read()
    if args.get("ca_paths"):
        cadata = list(args["ca_paths"])  # read by the client, as the firmware passes them
    try:
        c = client.Client(
            args["dvnuuid"],
            args["secret"],
            url=args["url"],
            timeout=args.get("timeout", 2),
            cadata=cadata,
            insecure=args.get("insecure", False),
            max_response=args.get("max_response", 4096),
        )
    except ValueError as e:
        print(json.dumps({"construct_error": str(e)}))
        return
    out = []
    try:
        for body in args["bodies"]:
            r = c.send(body.encode())
            out.append(
                {
                    "status": r.status,
                    "outcome": r.outcome,
                    "downlink": [_record(x) for x in r.downlink],
                    "error": r.error,
                }
            )
    finally:
        c.close()
    print(json.dumps(out))


main()
