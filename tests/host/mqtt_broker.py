"""A real Mosquitto broker on 127.0.0.1 for the MQTT tests, plus a paho-mqtt observer.

`Broker` writes a config into a temporary folder: a plain listener and a TLS listener (server
certificate from a trustme test CA), both on free ports of 127.0.0.1, anonymous access off and one
user in a password file made by `mosquitto_passwd`. Persistence is on with a one-second autosave,
so a persistent observer session survives `kill()` (SIGKILL) and `start()` again on the same ports.
`pause()`/`resume()` SIGSTOP/SIGCONT the broker: a peer that accepts TCP but never answers.

Needs Debian's `mosquitto` package (the `mosquitto` and `mosquitto_passwd` commands).
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

USER = "device-user"
PASSWORD = "bench-password-5f2b9c"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mosquitto_path():
    for name in ("mosquitto", "/usr/sbin/mosquitto"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Broker:
    def __init__(self, folder, user=USER, password=PASSWORD):
        import trustme

        self.folder = str(folder)
        self.user = user
        self.password = password
        self.port = free_port()
        self.tls_port = free_port()
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.ca_der = ssl.PEM_cert_to_DER_cert(self.ca.cert_pem.bytes().decode())
        self.ca_der_path = os.path.join(self.folder, "ca.der")
        with open(self.ca_der_path, "wb") as f:
            f.write(self.ca_der)
        certfile = os.path.join(self.folder, "server.pem")
        keyfile = os.path.join(self.folder, "server.key")
        cert.cert_chain_pems[0].write_to_path(certfile)
        cert.private_key_pem.write_to_path(keyfile)
        passwd = os.path.join(self.folder, "passwd")
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", passwd, user, password],
            check=True,
            capture_output=True,
        )
        os.chmod(passwd, 0o600)
        self.log = os.path.join(self.folder, "mosquitto.log")
        self.conf = os.path.join(self.folder, "mosquitto.conf")
        lines = [
            "user root",  # run as root in CI: keep access to the temporary files
            "per_listener_settings false",
            "allow_anonymous false",
            "password_file " + passwd,
            "persistence true",
            "persistence_location " + self.folder + "/",
            "autosave_interval 1",
            "log_dest file " + self.log,
            "log_type all",
            "listener %d 127.0.0.1" % self.port,
            "listener %d 127.0.0.1" % self.tls_port,
            "certfile " + certfile,
            "keyfile " + keyfile,
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self, timeout=10.0):
        self.proc = subprocess.Popen(
            [mosquitto_path(), "-c", self.conf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + timeout
        for port in (self.port, self.tls_port):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("mosquitto exited: see " + self.log)
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    if time.monotonic() > end:
                        raise RuntimeError("mosquitto did not listen on %d" % port) from None
                    time.sleep(0.05)
        return self

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def close(self):
        self.kill()


class Observer:
    """A paho-mqtt client beside the device: collects uplinks and publishes downlinks.

    Persistent session (clean_session False, QoS 1), so the broker queues what arrives while the
    observer reconnects after a broker restart.
    """

    def __init__(self, broker, topic, client_id="observer"):
        import paho.mqtt.client as paho

        self.topic = topic
        self.messages = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.c.username_pw_set(broker.user, broker.password)
        self.c.reconnect_delay_set(min_delay=1, max_delay=1)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", broker.port, keepalive=5)
        self.c.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("observer could not subscribe")

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def payloads(self):
        with self._lock:
            return [p for _, p in self.messages]

    def wait_for(self, predicate, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(self.payloads()):
                return True
            time.sleep(0.05)
        return predicate(self.payloads())

    def publish(self, topic, payload, retain=False):
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published()

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()
