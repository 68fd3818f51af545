"""Free loopback ports for the e2e tests and the benchmarks: `free_ports.py [COUNT]` prints the first of COUNT
consecutive free ports.

The ports are taken below the kernel's ephemeral range: a port picked there by binding to port 0
can be handed, before our service binds it, to any process's outgoing connection (Swift's servers
hold theirs for minutes), and the service then cannot start.
"""
import random
import socket
import sys

LOWEST = 10000


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_ports(count=1):
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    for _ in range(1000):
        base = random.randrange(LOWEST, ephemeral_low - count)
        if all(_bindable(port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports in {LOWEST}..{ephemeral_low}")


if __name__ == "__main__":
    print(free_ports(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
