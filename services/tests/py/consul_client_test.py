"""conclave registry through py-consul, a Consul client that no one here wrote.

Run by services/tests/py_consul.rs with CONCLAVE_REGISTRY=host:port (and CONCLAVE_TOKEN when
the registry wants one). Registers two instances of a service as the seed's nodes would, one
whose TCP check passes and one whose check fails, follows the healthy ones with blocking
queries; registers four nodes with TCP checks and kills one, which leaves the healthy list
within about a check interval while a blocking query waits; deregisters, and checks that a
waiting query wakes on that change too.
"""

import os
import socket
import sys
import threading
import time

import consul


def main() -> None:
    host, port = os.environ["CONCLAVE_REGISTRY"].rsplit(":", 1)
    c = consul.Consul(host=host, port=int(port), token=os.environ.get("CONCLAVE_TOKEN"))

    up = socket.socket()
    up.bind(("127.0.0.1", 0))
    up.listen()
    up_port = up.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    down_port = closed.getsockname()[1]
    closed.close()

    for service_id, check_port in (("node1", up_port), ("node2", down_port)):
        assert c.agent.service.register(
            "voter",
            service_id=service_id,
            address="127.0.0.1",
            port=check_port,
            tags=["bully"],
            check=consul.Check.tcp("127.0.0.1", check_port, "1s", timeout="1s"),
        ), f"register {service_id}"

    # Follow the healthy instances with blocking queries until node1's check has passed.
    index, nodes = c.health.service("voter", passing=True)
    deadline = time.monotonic() + 15
    while [n["Service"]["ID"] for n in nodes] != ["node1"]:
        assert time.monotonic() < deadline, f"healthy instances still {nodes}"
        index, nodes = c.health.service("voter", passing=True, index=index, wait="5s")
    assert nodes[0]["Service"]["Port"] == up_port
    assert nodes[0]["Service"]["Tags"] == ["bully"]

    # The catalog keeps the critical instance; the health endpoint says why.
    _, everyone = c.catalog.service("voter")
    assert [s["ServiceID"] for s in everyone] == ["node1", "node2"], everyone
    _, services = c.catalog.services()
    assert services == {"voter": ["bully"]}, services
    _, all_health = c.health.service("voter")
    node2_checks = {ch["CheckID"]: ch["Status"] for ch in all_health[1]["Checks"]}
    assert node2_checks["service:node2"] == "critical", node2_checks

    # Four nodes with TCP checks every second, all healthy; then one is killed (its
    # listener closed): a blocking query waiting on the healthy list returns without it
    # within about one check interval.
    listeners = {}
    for service_id in ("node3", "node4", "node5", "node6"):
        node = socket.socket()
        node.bind(("127.0.0.1", 0))
        node.listen()
        listeners[service_id] = node
        node_port = node.getsockname()[1]
        assert c.agent.service.register(
            "voter",
            service_id=service_id,
            address="127.0.0.1",
            port=node_port,
            check=consul.Check.tcp("127.0.0.1", node_port, "1s", timeout="1s"),
        ), f"register {service_id}"
    four = ["node1", "node3", "node4", "node5", "node6"]
    index, nodes = c.health.service("voter", passing=True)
    deadline = time.monotonic() + 15
    while sorted(n["Service"]["ID"] for n in nodes) != four:
        assert time.monotonic() < deadline, f"healthy instances still {nodes}"
        index, nodes = c.health.service("voter", passing=True, index=index, wait="5s")
    woke = {}

    def wait_for_change() -> None:
        woke["answer"] = c.health.service("voter", passing=True, index=index, wait="30s")

    waiter = threading.Thread(target=wait_for_change)
    waiter.start()
    killed = time.monotonic()
    listeners["node4"].close()
    waiter.join(15)
    assert not waiter.is_alive(), "the blocking query did not return"
    new_index, healthy = woke["answer"]
    noticed = time.monotonic() - killed
    assert int(new_index) > int(index), (new_index, index)
    assert sorted(n["Service"]["ID"] for n in healthy) == ["node1", "node3", "node5", "node6"], healthy
    # One check interval (1 s), the check's own timeout, and slack for a loaded machine.
    assert noticed < 4, f"the killed node left the healthy list after {noticed:.2f} s"
    for service_id, node in listeners.items():
        assert c.agent.service.deregister(service_id)
        node.close()

    # A blocking query waiting on the healthy list wakes when node1 leaves.
    index, _ = c.health.service("voter", passing=True)
    woke = {}

    def wait_for_leave() -> None:
        woke["answer"] = c.health.service("voter", passing=True, index=index, wait="30s")

    waiter = threading.Thread(target=wait_for_leave)
    started = time.monotonic()
    waiter.start()
    # Whether the query reaches the registry before or after the change, it answers with it.
    assert c.agent.service.deregister("node1")
    waiter.join(15)
    assert not waiter.is_alive(), "the blocking query did not return"
    new_index, healthy = woke["answer"]
    assert int(new_index) > int(index), (new_index, index)
    assert healthy == [], healthy
    assert time.monotonic() - started < 10

    # An unknown id: Consul answers 404, which py-consul's deregister reports as False.
    assert c.agent.service.deregister("no-such-node") is False
    assert c.agent.service.deregister("node2")
    _, services = c.catalog.services()
    assert services == {}, services
    up.close()
    print(f"py-consul {consul.__version__}: register, health ?passing, a killed node dropped, blocking queries, catalog, deregister: ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e!r}", file=sys.stderr)
        raise
