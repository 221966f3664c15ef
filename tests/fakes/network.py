"""Stand-in for `network` on the unix port (and CPython): a WLAN that connects at once.

Tests steer it through class attributes: `WLAN.fail = True` makes connect() never succeed,
`WLAN.connect_polls = n` makes isconnected() answer True only from the n-th poll on.
"""

STA_IF = 0
AP_IF = 1

STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_WRONG_PASSWORD = -3
STAT_NO_AP_FOUND = -2
STAT_CONNECT_FAIL = -1
STAT_GOT_IP = 3


class WLAN:
    fail = False
    connect_polls = 0

    def __init__(self, interface=STA_IF):
        self._interface = interface
        self._active = False
        self._status = STAT_IDLE
        self._polls = 0
        self.ssid = None

    def active(self, is_active=None):
        if is_active is None:
            return self._active
        self._active = bool(is_active)
        return None

    def connect(self, ssid=None, key=None, **kw):
        self.ssid = ssid
        self._polls = 0
        self._status = STAT_CONNECTING
        print("[wifi] connecting to %r" % (ssid,))

    def disconnect(self):
        self._status = STAT_IDLE

    def isconnected(self):
        if self._status == STAT_CONNECTING and not WLAN.fail:
            self._polls += 1
            if self._polls > WLAN.connect_polls:
                self._status = STAT_GOT_IP
        return self._status == STAT_GOT_IP

    def status(self, param=None):
        if param == "rssi":
            return -55
        return self._status

    def ifconfig(self, config=None):
        if config is None:
            return ("192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1")
        return None

    def config(self, *args, **kw):
        if args == ("mac",):
            return b"\x02\x00\x00\x00\x00\x01"
        return None
