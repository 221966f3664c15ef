"""Applying a downlink to pins: each record checked against the allow-list, then driven.

Loaded only when a downlink arrives (kpnthings.downlink.Actuators.apply), and dropped again
after: most cycles have no downlink. Every refusal is decided before any pin is touched.
"""

_DEVICE_PREFIX = "urn:dev:DVNUUID:"


def _is_number(x):
    # bool is an int subclass on both runtimes, but true/false is not a number here.
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _machine_factory(kind, pin, entry):
    """Create the real output: machine.Pin for digital, machine.PWM for PWM."""
    import machine

    if kind == "digital":
        return machine.Pin(pin, machine.Pin.OUT)
    pwm = machine.PWM(machine.Pin(pin))
    pwm.freq(entry["freq"])
    return pwm


def _local_name(full, base_name):
    if base_name:
        if full.startswith(base_name):
            return full[len(base_name) :]
        if ":" in full:
            return None
        return full
    if full.startswith(_DEVICE_PREFIX):
        rest = full[len(_DEVICE_PREFIX) :]
        i = rest.find(":")
        return rest[i + 1 :] if i >= 0 else None
    return None if ":" in full else full


def _check(record, entry):
    """Return (value to apply, "") or (None, reason); touches nothing."""
    for bad in ("vs", "vd", "s"):
        if bad in record:
            return None, "wrong type: %s given, %s wants %s" % (
                bad,
                entry["type"],
                "vb or v 0/1" if entry["type"] == "digital" else "v",
            )
    if entry["type"] == "digital":
        if "vb" in record:
            vb = record["vb"]
            if not isinstance(vb, bool):
                return None, "wrong type: vb must be true or false"
            return vb, ""
        if "v" in record:
            v = record["v"]
            if not _is_number(v) or v != v:
                return None, "wrong type: v must be 0 or 1"
            if v == 0 or v == 1:
                return v == 1, ""
            return None, "out of range: v must be 0 or 1, got %r" % (v,)
        return None, "no value: digital wants vb or v"
    if "vb" in record:
        return None, "wrong type: vb given, pwm wants v"
    if "v" not in record:
        return None, "no value: pwm wants v"
    v = record["v"]
    if not _is_number(v) or v != v:
        return None, "wrong type: v must be a number"
    if not entry["min"] <= v <= entry["max"]:
        return None, "out of range: v must be within [%r, %r], got %r" % (
            entry["min"],
            entry["max"],
            v,
        )
    return v, ""


def _drive(actuators, name, entry, value):
    out = actuators._outputs.get(name)
    if out is None:
        out = (actuators._factory or _machine_factory)(entry["type"], entry["pin"], entry)
        actuators._outputs[name] = out
    if entry["type"] == "digital":
        out.value(1 if value != entry["active_low"] else 0)  # pyright: ignore[reportAttributeAccessIssue]
    else:
        lo = entry["min"]
        span = entry["max"] - lo
        out.duty_u16(int((value - lo) * 65535 / span + 0.5))  # pyright: ignore[reportAttributeAccessIssue]
    actuators._state[name] = value


def apply(actuators, records, base_name=None):
    """Apply downlink records; return a list of (name, ok, reason), one per record."""
    results = []
    for record in records or ():
        full = record.get("n", "") if isinstance(record, dict) else ""
        if not isinstance(full, str):
            full = ""
        name = _local_name(full, base_name)
        if name is None:
            results.append((full, False, "not for this device"))
            continue
        entry = actuators.spec.get(name)
        if entry is None:
            results.append((name, False, "unknown actuator"))
            continue
        value, reason = _check(record, entry)
        if reason:
            results.append((name, False, reason))
            continue
        try:
            _drive(actuators, name, entry, value)
        except (OSError, ValueError, TypeError) as e:
            results.append((name, False, "pin error: %s" % (e,)))
            continue
        results.append((name, True, ""))
    return results
