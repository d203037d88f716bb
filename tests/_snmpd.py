"""A real Net-SNMP agent on 127.0.0.1 for tests, with values the test controls.

`run_snmpd()` writes an snmpd.conf into a temp dir, starts `/usr/sbin/snmpd -f` on a free UDP port
of 127.0.0.1 with its own persistent dir, waits until it answers, and stops it on exit. A
`pass_persist` helper serves the subtrees in `served` from a JSON file that `SnmpAgent.set()` rewrites,
so a test can make a counter grow, wrap, or vanish, or fake an interface table. `restart()` stops and
starts the agent on the same port, which resets its sysUpTime as a real reboot does.

Small BER helpers (`ber_*`) build SNMP messages by hand for readiness checks and fuzzing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = [
    "SNMPD",
    "SnmpAgent",
    "ber_get_request",
    "ber_int",
    "ber_len",
    "ber_oid",
    "ber_tlv",
    "free_udp_port",
    "require_snmpd",
    "run_snmpd",
]

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
PRINTER_MIB = "1.3.6.1.2.1.43"
TEST_ENTERPRISE = "1.3.6.1.4.1.99999"

# the pass_persist helper: Net-SNMP's line protocol, values re-read from a JSON file on every request
_PASS_PERSIST = r"""
import json, sys
DATA = sys.argv[1]

def key(oid):
    return tuple(int(p) for p in oid.strip(".").split("."))

def load():
    try:
        with open(DATA, encoding="utf-8") as fh:
            return {key(k): v for k, v in json.load(fh).items()}
    except (OSError, ValueError):
        return {}

def answer(oid, entry):
    sys.stdout.write("." + ".".join(map(str, oid)) + "\n" + entry[0] + "\n" + str(entry[1]) + "\n")

for line in sys.stdin:
    cmd = line.strip()
    if cmd == "PING":
        sys.stdout.write("PONG\n")
    elif cmd in ("get", "getnext"):
        wanted = key(sys.stdin.readline())
        data = load()
        if cmd == "get":
            found = wanted if wanted in data else None
        else:
            later = sorted(k for k in data if k > wanted)
            found = later[0] if later else None
        if found is None:
            sys.stdout.write("NONE\n")
        else:
            answer(found, data[found])
    elif cmd == "set":
        sys.stdin.readline(); sys.stdin.readline()
        sys.stdout.write("not-writable\n")
    elif cmd == "":
        break
    sys.stdout.flush()
"""


def require_snmpd() -> None:
    """Skip the calling test when Net-SNMP's agent is not installed."""
    if not os.access(SNMPD, os.X_OK):
        pytest.skip("Net-SNMP agent not installed (apt-get install snmpd)")


def free_udp_port() -> int:
    """Return a UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SnmpAgent:
    """A running snmpd: where it listens, its credentials, and the values its pass helper serves."""

    port: int
    workdir: Path
    community: str
    users: dict[str, tuple[str, str, str, str]]
    process: subprocess.Popen[bytes] | None = None
    served: tuple[str, ...] = ()
    _values: dict[str, tuple[str, str | int]] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_file(self) -> Path:
        return self.workdir / "values.json"

    def set(self, oid: str, kind: str, value: str | int) -> None:
        """Serve `value` at `oid` (kind: counter, counter64, gauge, integer, timeticks, string...)."""
        self._values[oid.lstrip(".")] = (kind, value)
        self._write()

    def unset(self, oid: str) -> None:
        """Stop serving `oid` (the agent then answers noSuchObject/noSuchInstance)."""
        self._values.pop(oid.lstrip("."), None)
        self._write()

    def _write(self) -> None:
        tmp = self.data_file.with_suffix(".tmp")
        payload = {oid: [kind, value] for oid, (kind, value) in self._values.items()}
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        # a rename is atomic, so the helper never reads half a file
        os.replace(tmp, self.data_file)

    def start(self) -> None:
        """Start snmpd and wait until it answers a GET (about 75 ms)."""
        env = dict(os.environ, SNMP_PERSISTENT_DIR=str(self.workdir / "persist"))
        log = open(self.workdir / "snmpd.log", "ab")  # noqa: SIM115 - handed to the child process
        try:
            self.process = subprocess.Popen(
                [
                    SNMPD,
                    "-f",
                    "-Lo",
                    "-C",
                    "-c",
                    str(self.workdir / "snmpd.conf"),
                    f"udp:127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            log.close()
        if not self._wait_ready(5.0):
            self.stop()
            tail = (self.workdir / "snmpd.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"snmpd did not answer on {self.address}:\n{tail}")

    def _wait_ready(self, limit: float) -> bool:
        # asking for the served subtrees too starts the pass_persist helpers before the test needs them
        oids = ["1.3.6.1.2.1.1.3.0", *(f"{base}.0" for base in self.served)]
        request = ber_get_request(self.community.encode(), oids, request_id=7)
        deadline = time.monotonic() + limit
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.05)
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    return False
                try:
                    sock.sendto(request, ("127.0.0.1", self.port))
                    sock.recvfrom(65535)
                    return True
                except OSError:
                    continue
        return False

    def stop(self) -> None:
        """Stop snmpd (SIGTERM, then SIGKILL if it lingers)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=3)
        self.process = None

    def restart(self) -> None:
        """Stop and start the agent on the same port: its sysUpTime starts again from zero."""
        self.stop()
        self.start()


def _config(
    community: str,
    users: dict[str, tuple[str, str, str, str]],
    served: tuple[str, ...],
    helper: Path,
    data: Path,
) -> str:
    lines = [f"rocommunity {community} 127.0.0.1", "sysLocation Oran test bench", "sysContact noc@example.dz"]
    for user, (auth_proto, auth_key, priv_proto, priv_key) in users.items():
        lines.append(f"createUser {user} {auth_proto} {auth_key} {priv_proto} {priv_key}")
        lines.append(f"rouser {user} priv")
    for base in served:
        lines.append(f"pass_persist .{base} {sys.executable} {helper} {data}")
    return "\n".join(lines) + "\n"


@contextmanager
def run_snmpd(
    community: str = "public",
    users: dict[str, tuple[str, str, str, str]] | None = None,
    served: tuple[str, ...] = (PRINTER_MIB, TEST_ENTERPRISE),
    values: dict[str, tuple[str, str | int]] | None = None,
) -> Iterator[SnmpAgent]:
    """Run a Net-SNMP agent on 127.0.0.1 for the duration of the block.

    Args:
        community: the v2c read-only community.
        users: v3 users as {name: (auth protocol, auth key, priv protocol, priv key)}, authPriv.
        served: subtrees answered by the pass_persist helper from `SnmpAgent.set()` values.
        values: initial {oid: (kind, value)} served under `served`.

    Yields:
        The running agent; skips the test when snmpd is not installed.
    """
    require_snmpd()
    with tempfile.TemporaryDirectory(prefix="bibnet-snmpd-") as tmp:
        workdir = Path(tmp)
        (workdir / "persist").mkdir()
        helper = workdir / "pass_persist.py"
        helper.write_text(_PASS_PERSIST, encoding="utf-8")
        agent = SnmpAgent(free_udp_port(), workdir, community, dict(users or {}), served=served)
        for oid, (kind, value) in (values or {}).items():
            agent._values[oid.lstrip(".")] = (kind, value)
        agent._write()
        conf = _config(community, agent.users, served, helper, agent.data_file)
        (workdir / "snmpd.conf").write_text(conf, encoding="utf-8")
        try:
            agent.start()
            yield agent
        finally:
            agent.stop()


def ber_len(length: int) -> bytes:
    """BER definite length."""
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def ber_tlv(tag: int, content: bytes) -> bytes:
    """One BER tag-length-value."""
    return bytes([tag]) + ber_len(len(content)) + content


def ber_int(value: int, tag: int = 0x02) -> bytes:
    """A BER INTEGER (or an application type sharing its encoding, e.g. Counter32 0x41)."""
    length = max(1, (value.bit_length() + 8) // 8)
    return ber_tlv(tag, value.to_bytes(length, "big", signed=True))


def ber_oid(oid: str) -> bytes:
    """A BER OBJECT IDENTIFIER."""
    parts = [int(p) for p in oid.strip(".").split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body.extend(reversed(chunk))
    return ber_tlv(0x06, bytes(body))


def ber_get_request(community: bytes, oids: list[str], request_id: int = 1, pdu_tag: int = 0xA0) -> bytes:
    """An SNMPv2c message (GetRequest by default) asking for `oids`."""
    bindings = b"".join(ber_tlv(0x30, ber_oid(oid) + b"\x05\x00") for oid in oids)
    pdu = ber_tlv(pdu_tag, ber_int(request_id) + ber_int(0) + ber_int(0) + ber_tlv(0x30, bindings))
    return ber_tlv(0x30, ber_int(1) + ber_tlv(0x04, community) + pdu)
