"""Free loopback ports for the e2e tests and the benchmarks: `free_ports.py [COUNT]` prints the
first of COUNT consecutive free ports.

The ports are taken outside the kernel's ephemeral range (below it where possible): a port picked
by binding to port 0 is in that range, and can be handed, before our service binds it, to any
process's outgoing connection (Swift's servers hold theirs for minutes); the service then cannot
start.
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
        ephemeral_low, ephemeral_high = map(int, f.read().split())
    # Below the ephemeral range, else above it, else (a machine that made it all ephemeral) anywhere.
    if ephemeral_low - count > LOWEST + 1000:
        low, high = LOWEST, ephemeral_low - count
    elif 65535 - count > ephemeral_high + 1000:
        low, high = ephemeral_high + 1, 65535 - count
    else:
        low, high = LOWEST, 65535 - count
    for _ in range(1000):
        base = random.randrange(low, high)
        if all(_bindable(port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports in {low}..{high}")


if __name__ == "__main__":
    print(free_ports(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
