"""Stand-in for cbor2, which micropython-senml imports at the top level even for its JSON path."""


def dumps(obj):
    raise NotImplementedError("cbor2 stub: the benchmark uses the JSON path only")


def loads(data):
    raise NotImplementedError("cbor2 stub: the benchmark uses the JSON path only")
