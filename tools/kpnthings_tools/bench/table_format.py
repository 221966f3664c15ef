"""The shape of the tables `make bench` prints (the README's markdown: figure | ours | baseline |
ratio | target | met), and the cells every figure family writes alike."""

HEADER = ("figure", "ours", "baseline", "ratio", "target", "")
NOT_MEASURED = "not measured"


def mark(ok):
    return "met" if ok else "NOT met"


def ratio(a, b):
    return round(a / b, 3) if b else ""


def markdown(rows):
    lines = []
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
        if i == 0:
            lines.append("|" + "---|" * len(row))
    return "\n".join(lines)


def absent(label, why):
    return (label, why, "", "", "", NOT_MEASURED)
