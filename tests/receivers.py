"""A local HTTP receiver that records what it is sent and answers as a test tells it to."""
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.time)
    client_port: int = 0  # the sender's end of the connection: requests with the same one came over one connection

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    # Many deliveries connect at once; the default backlog of 5 would refuse some of them.
    request_queue_size = 128
    daemon_threads = True


class Receiver:
    """ThreadingHTTPServer on 127.0.0.1 with a free port. `replies` are used in order, the last one repeats;
    or `decide(request)` answers each request (reply_by), whatever order concurrent requests arrive in."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies = [Reply()]
        self.decide: Callable[[Received], Reply] | None = None
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle each keep-alive reply waits for a delayed ACK (~40 ms).
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                received = Received("POST", self.path, dict(self.headers), body, client_port=self.client_address[1])
                with receiver._lock:
                    receiver.requests.append(received)
                    if receiver.decide:
                        reply = receiver.decide(received)
                    else:
                        reply = receiver.replies[0] if len(receiver.replies) == 1 else receiver.replies.pop(0)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        # A short poll interval: stop() waits up to one interval, and every receiver test pays it.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def reply_with(self, *replies: Reply) -> None:
        with self._lock:
            self.replies = list(replies)
            self.decide = None

    def reply_by(self, decide: Callable[[Received], Reply]) -> None:
        """Answer each request with decide(request), called under the lock after the request was recorded."""
        with self._lock:
            self.decide = decide

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
