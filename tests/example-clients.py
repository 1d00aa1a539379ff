"""Clients that drive the example servers for tests/examples.sh.

    example-clients.py chat PORT SERVER_OUTPUT   a chat session of three clients
    example-clients.py bulk PORT NBYTES          NBYTES through the echo server

Each prints what went wrong and exits 1, or exits 0. Every wait is bounded:
a socket read gives up after TIMEOUT seconds, and so does waiting for a line
of the server's output (which tells when the server has seen a join)."""
import os
import socket
import sys
import threading
import time

TIMEOUT = 10.0


class Failed(Exception):
    pass


def wait_for_output(path, line):
    """Waits until the file at path (the server's stdout) holds line."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with open(path) as f:
            if line in f.read().splitlines():
                return
        time.sleep(0.02)
    raise Failed(f"the server never printed {line!r}")


class ChatClient:
    def __init__(self, port, name, server_output):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.pending = b""
        self.send(name)
        wait_for_output(server_output, f"{name} has joined")

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def expect(self, want):
        while b"\r\n" not in self.pending:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                data = None
            if not data:
                raise Failed(f"{self.name}: no line, wanted {want!r}")
            self.pending += data
        line, self.pending = self.pending.split(b"\r\n", 1)
        if line.decode() != want:
            raise Failed(f"{self.name}: got {line.decode()!r}, wanted {want!r}")

    def close(self):
        self.sock.close()


def chat(port, server_output):
    alice = ChatClient(port, "alice", server_output)
    bob = ChatClient(port, "bob", server_output)
    alice.expect("bob has joined")
    carol = ChatClient(port, "carol", server_output)
    alice.expect("carol has joined")
    bob.expect("carol has joined")

    alice.send("hello, everyone")
    bob.expect("<alice> hello, everyone")
    carol.expect("<alice> hello, everyone")
    bob.send("hi alice")
    alice.expect("<bob> hi alice")
    carol.expect("<bob> hi alice")

    bob.close()
    # The next line alice and carol see is bob leaving: nobody hears their own lines.
    alice.expect("bob has left")
    carol.expect("bob has left")
    carol.send("bye")
    alice.expect("<carol> bye")
    carol.close()
    alice.expect("carol has left")
    alice.close()


def bulk(port, nbytes):
    """Sends nbytes while reading the echo back. A small receive buffer
    makes the echo wait for this reader, so the server's write buffer fills
    and its flow control pauses and resumes its reading along the way."""
    data = os.urandom(nbytes)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", port))
    sender = threading.Thread(target=sock.sendall, args=(data,))
    sender.start()
    echoed = bytearray()
    while len(echoed) < nbytes:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        echoed += chunk
    sender.join()
    sock.close()
    if bytes(echoed) != data:
        raise Failed(f"sent {nbytes} bytes, {len(echoed)} came back"
                     + (" different" if len(echoed) == nbytes else ""))


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "chat":
            chat(int(argv[2]), argv[3])
        elif len(argv) == 4 and argv[1] == "bulk":
            bulk(int(argv[2]), int(argv[3]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (Failed, OSError) as e:
        print(f"{argv[1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
