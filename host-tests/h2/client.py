"""One HTTP/2 request over cleartext with prior knowledge (h2c), trailers included.

Used by host-tests/tests/envoy_trailers.rs to send what an HTTP/1.1 test client cannot easily
send through Envoy: request trailers after the body (END_STREAM on the trailers), and to read
the response's trailers.

    client.py --port PORT [--timeout SECONDS] < request.json

The request, a JSON object on stdin:

    {"method": "POST", "path": "/mcp", "authority": "bridle.test",
     "headers": [["content-type", "application/json"]],
     "data": ["first DATA frame", "second"],     # each item one or more DATA frames; may be []
     "trailers": [["x-checksum", "abc"]],        # optional; when given, they end the stream
     "pause": 0.05}                              # optional seconds before each DATA/trailers

Prints one JSON line: {"status": 200, "headers": [[n, v], ...], "body": "...",
"trailers": [[n, v], ...], "reset": null} — `reset` is the error code when the server reset
the stream instead of ending it (then status may be null). Exits 2 on a timeout, 3 on a
protocol or connection error, with a message on stderr.
"""

import argparse
import json
import select
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


class Failure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Client:
    def __init__(self, port, timeout):
        self.deadline = time.monotonic() + timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.flush()
        self.stream_id = None
        self.status = None
        self.headers = []
        self.body = bytearray()
        self.trailers = []
        self.reset = None
        self.ended = False
        self.closed = False

    def remaining(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failure(2, "timed out waiting for the response")
        return left

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def done(self):
        return self.ended or self.reset is not None

    def receive(self, wait):
        """Reads what arrives within `wait` seconds (at most until the deadline) and handles
        it; returns whether anything was read."""
        if self.closed:
            return False
        wait = min(wait, self.remaining())
        readable, _, _ = select.select([self.sock], [], [], wait)
        if not readable:
            return False
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            self.handle(event)
        self.flush()
        return True

    def handle(self, event):
        mine = getattr(event, "stream_id", None) == self.stream_id
        if isinstance(event, h2.events.ResponseReceived) and mine:
            for name, value in event.headers:
                if name == ":status":
                    self.status = int(value)
                else:
                    self.headers.append([name, value])
        elif isinstance(event, h2.events.InformationalResponseReceived):
            pass
        elif isinstance(event, h2.events.DataReceived) and mine:
            self.body.extend(event.data)
            self.conn.acknowledge_received_data(
                event.flow_controlled_length, event.stream_id
            )
        elif isinstance(event, h2.events.TrailersReceived) and mine:
            self.trailers.extend([name, value] for name, value in event.headers)
        elif isinstance(event, h2.events.StreamEnded) and mine:
            self.ended = True
        elif isinstance(event, h2.events.StreamReset) and mine:
            if not self.ended:
                self.reset = int(event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            if not self.done() and (
                event.last_stream_id is None or event.last_stream_id < self.stream_id
            ):
                raise Failure(
                    3,
                    f"server sent GOAWAY ({event.error_code!r}, last stream "
                    f"{event.last_stream_id}) before the response",
                )

    def send(self, action):
        """Runs one send, unless the server already ended or reset the stream (a local
        reply before the request is complete): then the rest of the request is dropped."""
        if self.done():
            return False
        try:
            action()
        except h2.exceptions.StreamClosedError:
            return False
        self.flush()
        return True

    def send_data(self, data, end_stream):
        view = memoryview(data)
        while True:
            if self.done():
                return
            size = min(
                len(view),
                self.conn.max_outbound_frame_size,
                self.conn.local_flow_control_window(self.stream_id),
            )
            if size == 0 and len(view) > 0:
                # Wait for the peer to open its flow-control window.
                if not self.receive(self.remaining()) and self.closed:
                    raise Failure(3, "connection closed while sending the body")
                continue
            last = size == len(view)
            chunk = bytes(view[:size])
            self.send(
                lambda: self.conn.send_data(
                    self.stream_id, chunk, end_stream=end_stream and last
                )
            )
            view = view[size:]
            if last:
                return

    def request(self, request):
        method = request.get("method", "GET")
        headers = [
            (":method", method),
            (":scheme", "http"),
            (":authority", request.get("authority", "bridle.test")),
            (":path", request.get("path", "/")),
        ]
        headers += [(name, value) for name, value in request.get("headers", [])]
        data = [d.encode("utf-8") for d in request.get("data", [])]
        trailers = [(name, value) for name, value in request.get("trailers", [])]
        pause = float(request.get("pause", 0))

        self.stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            self.stream_id, headers, end_stream=not data and not trailers
        )
        self.flush()
        for index, chunk in enumerate(data):
            if pause:
                self.receive(pause)
            self.send_data(chunk, end_stream=not trailers and index == len(data) - 1)
        if trailers:
            if pause:
                self.receive(pause)
            self.send(
                lambda: self.conn.send_headers(self.stream_id, trailers, end_stream=True)
            )
        while not self.done():
            if not self.receive(self.remaining()) and self.closed:
                if self.done():
                    break
                raise Failure(3, "connection closed before the response ended")
        return {
            "status": self.status,
            "headers": self.headers,
            "body": self.body.decode("utf-8", errors="replace"),
            "trailers": self.trailers,
            "reset": self.reset,
        }

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    request = json.load(sys.stdin)
    client = None
    try:
        client = Client(args.port, args.timeout)
        result = client.request(request)
    except Failure as failure:
        print(f"h2 client: {failure}", file=sys.stderr)
        return failure.code
    except (socket.timeout, TimeoutError):
        print("h2 client: timed out", file=sys.stderr)
        return 2
    except (h2.exceptions.ProtocolError, OSError) as error:
        print(f"h2 client: {type(error).__name__}: {error}", file=sys.stderr)
        return 3
    finally:
        if client is not None:
            client.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
