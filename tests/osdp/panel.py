"""An independent OSDP control panel for the end-to-end tests: PyPI's `libosdp` (osdp.ControlPanel)
on one end of a pty pair, driven by JSON lines on stdin, one JSON answer per line on stdout.

    python panel.py TTY ADDRESS [install:]SCBK_HEX

Operations: {"op": "wait_online" | "wait_offline" | "wait_sc", "timeout": S}, {"op": "status"},
{"op": "card", "timeout": S}, {"op": "no_card", "secs": S}, {"op": "led", "colour": "green",
"ms": 3000}, {"op": "text", "text": "..."}, {"op": "garbage", "bytes": N}, {"op": "retry"}, {"op": "quit"}.
"""

import errno
import json
import os
import random
import select
import sys
import time
import tty

import osdp


class PtyChannel(osdp.Channel):
    """The panel's end of the line: non-blocking reads and writes on the pty."""

    def __init__(self, path):
        super().__init__()
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)

    def read(self, max_bytes):
        try:
            return os.read(self.fd, max_bytes)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return b""
            raise

    def write(self, buf):
        try:
            return os.write(self.fd, buf)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return 0
            raise

    def flush(self):
        pass

    def write_all(self, data):
        """Blocking write of `data` (waits whenever the pty is full)."""
        view = memoryview(data)
        while view:
            select.select([], [self.fd], [], 1.0)
            view = view[self.write(bytes(view[:4096])):]


COLOURS = {"green": osdp.CommandLEDColor.Green, "red": osdp.CommandLEDColor.Red,
           "amber": osdp.CommandLEDColor.Amber, "off": osdp.CommandLEDColor.Black}


def wait_for(check, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.1)
    return check()


def next_card(cp, address, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        event = cp.get_event(address, timeout=max(0.05, end - time.monotonic()))
        if event and event.get("event") == osdp.Event.CardRead:
            return event
    return None


def main():
    path, address = sys.argv[1], int(sys.argv[2])
    channel = PtyChannel(path)
    if sys.argv[3].startswith("install:"):
        # A new reader: the secure channel starts under the default key (SCBK-D), and the panel
        # then gives the reader this key (KEYSET).
        key = bytes.fromhex(sys.argv[3].removeprefix("install:"))
        info = osdp.PDInfo(address, channel, scbk=key, flags=[osdp.LibFlag.InstallMode])
    else:
        info = osdp.PDInfo(address, channel, scbk=bytes.fromhex(sys.argv[3]), flags=[osdp.LibFlag.EnforceSecure])
    cp = osdp.ControlPanel([info], log_level=osdp.LogLevel.Warning)
    cp.start()
    answer = lambda **kv: print(json.dumps(kv), flush=True)
    answer(ready=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "wait_online":
            answer(ok=wait_for(lambda: cp.is_online(address), cmd["timeout"]))
        elif op == "wait_offline":
            answer(ok=wait_for(lambda: not cp.is_online(address), cmd["timeout"]))
        elif op == "wait_sc":
            answer(ok=wait_for(lambda: cp.is_sc_active(address), cmd["timeout"]))
        elif op == "status":
            answer(online=cp.is_online(address), sc=cp.is_sc_active(address))
        elif op == "card":
            event = next_card(cp, address, cmd["timeout"])
            if event is None:
                answer(ok=False)
            else:
                answer(ok=True, unix_ms=int(time.time() * 1000), bits=event["length"],
                       format=event["format"], data=bytes(event["data"]).hex())
        elif op == "no_card":
            event = next_card(cp, address, cmd["secs"])
            answer(ok=event is None, data=None if event is None else bytes(event["data"]).hex())
        elif op == "led":
            led = {"command": osdp.Command.LED, "reader": 0, "led_number": 0, "control_code": 2,
                   "on_count": 10, "off_count": 0, "on_color": COLOURS[cmd["colour"]],
                   "off_color": osdp.CommandLEDColor.Black, "timer_count": cmd["ms"] // 100,
                   "temporary": True}
            answer(ok=bool(cp.submit_command(address, led)))
        elif op == "text":
            text = {"command": osdp.Command.Text, "reader": 0, "control_code": 1, "temp_time": 0,
                    "offset_row": 1, "offset_col": 1, "data": cmd["text"]}
            answer(ok=bool(cp.submit_command(address, text)))
        elif op == "garbage":
            rng = random.Random(cmd.get("seed", 7))
            data = bytes(rng.getrandbits(8) for _ in range(cmd["bytes"]))
            started = time.monotonic()
            channel.write_all(data)
            answer(ok=True, written=len(data), secs=round(time.monotonic() - started, 3))
        elif op == "retry":
            # libosdp's panel waits 300 s before it tries an offline reader again; a panel
            # operator (or a panel with a quicker policy) retries at once.
            cp.disable_pd(address)
            wait_for(lambda: not cp.is_pd_enabled(address), 5)
            answer(ok=bool(cp.enable_pd(address)))
        elif op == "quit":
            answer(ok=True)
            break
        else:
            answer(error=f"unknown op {op}")
    cp.teardown()


if __name__ == "__main__":
    main()
