"""A node of seed 003's lab (SeattleU CPSC 5520, Lab 2), written from the seed's protocol
description with the standard library only, to test `conclave gcd --wire lab`.

Usage: python3 gcd_lab_node.py GCD_HOST GCD_PORT DAYS STUDENT_ID

Every message is a pickled (message_name, message_data) tuple on its own TCP connection;
an answer, when there is one, is a pickled tuple sent back on the same connection.

- JOIN ((days, student_id), (host, port)) to the GCD; the answer is the member dict
  {(days, student_id): (host, port)}.
- ELECTION, data: the sender's member dict, to every member with a higher identity; the
  answer is ('OK', None). No OK within 1.5 s: the sender wins. After an OK, no COORDINATOR
  within 3 s: it elects again. A node that gets ELECTION starts its own unless it is in one.
- COORDINATOR, data: the new leader's identity, to every other member; no answer. One from
  a lower identity makes the receiver elect (it bullies).
- PROBE, data None, to the leader every 0.5 to 3 s; the answer is ('OK', None). No answer:
  the node joins again and elects.

It prints one line per event, `key=value`, flushed: `listening port=P`, `joined members=N`,
`leader days=D student_id=S` each time it learns a leader.
"""
import pickle
import random
import socket
import socketserver
import sys
import threading

ANSWER_TIMEOUT = 1.5
COORDINATOR_TIMEOUT = 3.0
BUF_SZ = 4096


PRINT_LOCK = threading.Lock()


def say(line):
    """One whole line per event, even when threads print at once."""
    with PRINT_LOCK:
        sys.stdout.write(line + '\n')
        sys.stdout.flush()


def send(address, name, data, want_answer):
    """Sends one message on a fresh connection; returns the unpickled answer, or None."""
    with socket.create_connection(address, timeout=ANSWER_TIMEOUT) as sock:
        sock.sendall(pickle.dumps((name, data)))
        if not want_answer:
            return None
        sock.shutdown(socket.SHUT_WR)
        raw = b''
        while True:
            chunk = sock.recv(BUF_SZ)
            if not chunk:
                break
            raw += chunk
        return pickle.loads(raw)


class Node:
    def __init__(self, gcd, identity):
        self.gcd = gcd
        self.me = identity
        self.lock = threading.Lock()
        self.members = {}
        self.leader = None
        self.electing = False
        self.coordinator = threading.Event()
        node = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                node.handle(self.request)

        socketserver.ThreadingTCPServer.daemon_threads = True
        self.server = socketserver.ThreadingTCPServer(('localhost', 0), Handler)
        self.address = ('localhost', self.server.server_address[1])
        say('listening port={}'.format(self.address[1]))

    def run(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.join()
        self.probe_forever()

    def join(self):
        members = send(self.gcd, 'JOIN', (self.me, self.address), True)
        if not isinstance(members, dict):
            say('join_refused answer={!r}'.format(members))
            sys.exit(1)
        with self.lock:
            self.members = dict(members)
        say('joined members={}'.format(len(members)))
        self.start_election()

    def start_election(self):
        with self.lock:
            if self.electing:
                return
            self.electing = True
            self.leader = None
            self.coordinator.clear()
        threading.Thread(target=self.elect, daemon=True).start()

    def elect(self):
        while True:
            with self.lock:
                higher = [(p, a) for p, a in self.members.items() if p > self.me]
                members = dict(self.members)
            answered = False
            for pid, address in higher:
                try:
                    answer = send(tuple(address), 'ELECTION', members, True)
                    answered = answered or (isinstance(answer, tuple) and answer[0] == 'OK')
                except (OSError, EOFError, pickle.UnpicklingError):
                    pass
            if not answered:
                self.win()
                return
            if self.coordinator.wait(COORDINATOR_TIMEOUT):
                return

    def win(self):
        with self.lock:
            self.leader = self.me
            self.electing = False
            others = [a for p, a in self.members.items() if p != self.me]
        say('leader days={} student_id={}'.format(*self.me))
        for address in others:
            try:
                send(tuple(address), 'COORDINATOR', self.me, False)
            except OSError:
                pass

    def handle(self, sock):
        raw = b''
        while True:
            chunk = sock.recv(BUF_SZ)
            if not chunk or len(raw) > 65536:
                return
            raw += chunk
            try:
                name, data = pickle.loads(raw)
                break
            except (EOFError, pickle.UnpicklingError):
                continue
        if name == 'ELECTION':
            with self.lock:
                for pid, address in data.items():
                    if pid != self.me:
                        self.members[pid] = address
            sock.sendall(pickle.dumps(('OK', None)))
            self.start_election()
        elif name == 'COORDINATOR':
            leader = tuple(data)
            if leader > self.me:
                with self.lock:
                    self.leader = leader
                    self.electing = False
                self.coordinator.set()
                say('leader days={} student_id={}'.format(*leader))
            else:
                self.start_election()
        elif name == 'PROBE':
            sock.sendall(pickle.dumps(('OK', None)))

    def probe_forever(self):
        while True:
            threading.Event().wait(random.uniform(0.5, 3.0))
            with self.lock:
                leader = self.leader
                address = self.members.get(leader)
            if leader is None or leader == self.me or address is None:
                continue
            try:
                send(tuple(address), 'PROBE', None, True)
            except (OSError, EOFError, pickle.UnpicklingError):
                say('probe_failed days={} student_id={}'.format(*leader))
                self.join()


if __name__ == '__main__':
    if len(sys.argv) != 5:
        print('Usage: python3 gcd_lab_node.py GCD_HOST GCD_PORT DAYS STUDENT_ID')
        sys.exit(1)
    host, port, days, student_id = sys.argv[1:]
    Node((host, int(port)), (int(days), int(student_id))).run()
