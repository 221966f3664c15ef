"""Opening the outbox at boot, for kpnthings.wiring.make_outbox, which loads this module for that
call only and drops it: the folder beside config.json, its owner, one another identity filled
moved aside, and an earlier identity's readings handed over (kpnthings.outbox_handover).
"""

from kpnthings.wiring import _config_path, _dirname


def _exists(path):
    import os

    try:
        os.stat(path)
    except OSError:
        return False
    return True


def make_outbox(cfg, log, transport=None, feed=None, link_ready=None):
    """The persistent outbox, beside config.json, or None if this firmware has none.

    Readings go out only under the identity that took them: the folder names its owner. One
    that another identity filled (a new config over an old outbox) is moved aside whole (queue,
    counters, dead letters) to <outbox>-<uuid8> and reported. If config.json still holds that
    identity (previous_identities) and the transport is HTTP(S), the folders it owns are sent
    under it, by kpnthings.outbox_handover over `transport`'s server, before this device's first
    cycle (bounded: what is left waits for the next boot); otherwise they are never sent, and
    counted in the droppedReadings this device reports next. One from before owners is kept.
    """
    try:
        from kpnthings.outbox import Outbox
    except ImportError:
        return None
    where = cfg.get("outbox_dir")
    if not where:
        base = _dirname(_config_path())
        where = (base + "/outbox") if base and base != "/" else "outbox"
    uuid = cfg["dvnuuid"]
    # Over MQTT another identity is another session: its readings are only moved aside.
    olds = cfg.get("previous_identities") if cfg.get("transport") != "mqtt" else None
    olds = [x["dvnuuid"] for x in olds or ()]
    try:
        try:
            with open(where + "/owner", "rb") as f:
                owner = f.read().decode()
        except OSError:
            owner = None
        lost = 0
        if owner and owner != uuid:
            aside = where + "-" + owner[:8]
            n = 1
            while _exists(aside):
                n += 1
                aside = where + "-" + owner[:8] + "-" + str(n)
            import os

            os.rename(where, aside)
            n = len(Outbox(aside))
            if owner in olds:
                log(
                    "[boot] outbox: %d readings of device %s moved aside to %s, to go out under"
                    " that identity (previous_identities)" % (n, owner, aside)
                )
            else:
                lost = n
                log(
                    "[boot] outbox: %d readings of device %s moved aside to %s; this device (%s)"
                    " never sends them, and counts them in droppedReadings"
                    % (n, owner, aside, uuid)
                )
        box = Outbox(where, cfg.get("outbox_max_bytes"), cfg.get("dead_max_bytes"))
        if lost:  # persisted, and reported once: in the next uplink KPN accepts
            box.dropped += lost
            box._commit(box._head_seg, box._head_off)
        if owner != uuid:  # written once, not at every boot: each write costs a flash erase
            with open(where + "/owner", "wb") as f:
                f.write(uuid.encode())
    except (OSError, ValueError) as e:
        # A broken or read-only filesystem must not keep the device from reporting at all.
        log("[boot] outbox unavailable (%s): readings are sent without being stored" % (e,))
        return None
    if olds:
        # The folders an earlier identity in previous_identities owns, this boot's or older.
        import os

        cut = where.rfind("/") + 1
        found = []
        try:
            base = _dirname(where)
            for name in os.listdir(base) if base else os.listdir():
                if name.startswith(where[cut:] + "-"):
                    name = where[:cut] + name
                    try:
                        with open(name + "/owner", "rb") as f:
                            owner = f.read().decode()
                    except OSError:
                        continue
                    if owner in olds:
                        found.append((name, owner))
        except OSError as e:
            log("[boot] outbox: cannot look for earlier identities' readings (%s)" % (e,))
        if found:
            found.sort()
            from kpnthings import unload

            try:
                # Loaded by a name it spells only here (and unloaded): an import statement
                # would intern the module's name for good on every board, this one only where
                # such a folder exists.
                __import__("kpnthings.outbox_handover", None, None, ("send",)).send(
                    cfg, found, log, transport, feed, link_ready
                )
            except Exception as e:  # whatever it is, this device's own readings come first
                log("[boot] outbox: earlier identities' readings not sent (%s)" % (e,))
            finally:
                unload("outbox_handover")
    return box
