#!/usr/bin/env python3
"""Hostile and test peers for distribution_guard_test.sh (loopback only,
every wait bounded).

  peer.py garbage PORT COUNT       COUNT TCP connections to 127.0.0.1:PORT,
                                   each sends the 32 bytes of issue 18
                                   (b'\\x01' + 31 zero bytes) and waits up to
                                   2 s for the peer to close
  peer.py fake-aggregator PORTFILE SECONDS
                                   listens on 127.0.0.1:0 (port written to
                                   PORTFILE), answers every connection with
                                   those 32 bytes; prints a line per
                                   connection
  peer.py tls PORT [CERT KEY]      a TLS client (no certificate, or one the
                                   node's CA did not sign): exits 0 if the
                                   node refused it before sending one byte
                                   of application data (BASP), 1 if it got any
  peer.py udp PORT PAYLOAD [EXPECT]
                                   sends PAYLOAD (\\n escapes) to
                                   127.0.0.1:PORT; with EXPECT, waits up to
                                   3 s for a reply and exits 1 if it differs
"""
import socket
import ssl
import sys
import time

GARBAGE = b"\x01" + b"\0" * 31


def garbage(port, count):
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(GARBAGE)
            try:
                while s.recv(4096):
                    pass
            except (socket.timeout, ConnectionResetError):
                pass
    return 0


def fake_aggregator(portfile, seconds):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    accepted = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        accepted += 1
        print("accepted", accepted, flush=True)
        try:
            conn.sendall(GARBAGE)
            conn.settimeout(1)
            conn.recv(4096)
        except OSError:
            pass
        conn.close()
    return 0


def tls(port, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        try:
            with ctx.wrap_socket(raw) as s:
                # TLS 1.3: the client finishes its side before the server has
                # checked the client's certificate; the refusal arrives as
                # an alert on the first read.
                s.sendall(GARBAGE)
                data = s.recv(4096)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError,
                socket.timeout) as e:
            print("refused:", type(e).__name__, e)
            return 0
    if data:
        print("got %d bytes of application data" % len(data))
        return 1
    print("refused: closed")
    return 0


def udp(port, payload, expect=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(payload.encode().decode("unicode_escape").encode(),
             ("127.0.0.1", port))
    if expect is None:
        return 0
    try:
        reply = s.recv(65536).decode()
    except socket.timeout:
        print("no reply")
        return 1
    want = expect.encode().decode("unicode_escape")
    if reply != want:
        print("reply %r, expected %r" % (reply, want))
        return 1
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "garbage":
        return garbage(int(args[0]), int(args[1]))
    if cmd == "fake-aggregator":
        return fake_aggregator(args[0], float(args[1]))
    if cmd == "tls":
        return tls(int(args[0]), *args[1:3])
    if cmd == "udp":
        return udp(int(args[0]), *args[1:3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
