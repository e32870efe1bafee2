"""The local UI's server listens on 127.0.0.1 only: reachable there, not on other addresses."""

from __future__ import annotations

import inspect
import socket
from pathlib import Path

import pytest

from flows import cli, connect, ui

LISTEN = "0A"  # TCP state in /proc/net/tcp*


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the sockets listening on `port`, from /proc/net/tcp and tcp6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == LISTEN and int(hex_port, 16) == port:
                if len(address) == 8:  # IPv4, little-endian
                    found.append(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:  # IPv6: four little-endian 32-bit words
                    raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, 32, 8))
                    found.append(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def other_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, where the system reports any."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return sorted({info[4][0] for info in infos if not info[4][0].startswith("127.")})


def test_every_entry_point_defaults_to_loopback(monkeypatch):
    assert inspect.signature(ui.start).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(ui.serve).parameters["host"].default == "127.0.0.1"
    called = {}
    monkeypatch.setattr(ui, "serve", lambda **kwargs: called.update(kwargs) or 0)
    assert cli.main(["ui", "--port", "4299"]) == 0
    assert called == {"port": 4299}  # no host: the default above
    assert "--host" not in {a for action in cli.parser()._actions for a in action.option_strings}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs /proc/net/tcp (Linux) to see listening sockets")
def test_the_ui_server_listens_on_127_0_0_1_only(tmp_path, monkeypatch):
    # the server as `reviewlstm ui` starts it; the work pool, deployments and worker are not needed here
    for step in ("create_pool", "deploy"):
        monkeypatch.setattr(ui, step, lambda *args, **kwargs: None)
    monkeypatch.setattr(ui, "start_worker", lambda *args, **kwargs: None)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stack, url = ui.start(port=port, ui=False, log_dir=tmp_path / "logs")
    try:
        (name, server), = stack.procs
        assert name == "server" and server.args[server.args.index("--host") + 1] == "127.0.0.1"
        assert url == f"http://127.0.0.1:{port}" and connect.answers(f"{url}/api")
        addresses = listening_addresses(port)
        assert addresses and set(addresses) == {"127.0.0.1"}, addresses  # not 0.0.0.0, not ::
        for address in other_addresses():
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((address, port))
    finally:
        stack.stop()


def test_a_port_whose_server_just_stopped_counts_as_free():
    """`make ui` again at once after a stop: the old connections' TIME_WAIT is not a listener."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end of the connection waits in TIME_WAIT
    client.close()
    assert not ui.port_free("127.0.0.1", port)  # still listening
    server.close()
    assert ui.port_free("127.0.0.1", port)
