"""Raw HTTP/2 for the conformance cases (conformance/h2/run.py): a frame encoder that sends what h2
refuses to (wrong lengths, wrong streams, bad padding, broken header blocks), a client that reads the
server's frames back one at a time, and the checks the cases end with, each naming what RFC 9113
requires and, when it fails, what the server sent instead."""
import os
import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6) and flags.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
TYPE_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
              "WINDOW_UPDATE", "CONTINUATION"]
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Error codes (§7).
ERROR_NAMES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
               "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
               "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
(NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, FRAME_SIZE_ERROR,
 REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, ENHANCE_YOUR_CALM, INADEQUATE_SECURITY,
 HTTP_1_1_REQUIRED) = range(14)

# SETTINGS parameters (§6.5.2).
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = range(1, 7)

TIMEOUT = 1.5  # seconds to wait for what a case expects; a conforming server answers in milliseconds


def error_name(code: int) -> str:
    return ERROR_NAMES[code] if code < len(ERROR_NAMES) else f"0x{code:x}"


def frame(type_: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    """One frame: the 9-byte header (length, type, flags, reserved bit + stream id) and `payload`,
    whatever its length."""
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream) + payload


def settings(*pairs, ack=False, stream=0) -> bytes:
    return frame(SETTINGS, ACK if ack else 0, stream, b"".join(struct.pack(">HI", key, value) for key, value in pairs))


def ping(data: bytes = b"h2-suite", ack=False, stream=0, flags=None) -> bytes:
    return frame(PING, flags if flags is not None else (ACK if ack else 0), stream, data)


def rst_stream(stream: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def window_update(stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def goaway(last_stream: int, code: int, stream=0) -> bytes:
    return frame(GOAWAY, 0, stream, struct.pack(">II", last_stream, code))


def priority_fields(depends_on: int, weight: int = 16, exclusive=False) -> bytes:
    return struct.pack(">IB", depends_on | (0x80000000 if exclusive else 0), weight - 1)


def priority(stream: int, depends_on: int, weight: int = 16, exclusive=False) -> bytes:
    return frame(PRIORITY, 0, stream, priority_fields(depends_on, weight, exclusive))


def data(stream: int, body: bytes, end_stream=True, pad: int | None = None) -> bytes:
    if pad is None:
        return frame(DATA, END_STREAM if end_stream else 0, stream, body)
    return frame(DATA, (END_STREAM if end_stream else 0) | PADDED, stream, bytes([pad]) + body + b"\0" * pad)


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) with `first`'s high bits in its first octet."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_string(text: bytes, huffman_coded=False) -> bytes:
    return hpack_int(len(text), 7, 0x80 if huffman_coded else 0) + text


def literal(name: bytes, value: bytes) -> bytes:
    """A literal field without indexing, new name (RFC 7541 §6.2.2): bytes exactly as given, no
    table effects, so it can carry anything (uppercase names, CR/LF in values)."""
    return b"\x00" + hpack_string(name) + hpack_string(value)


class Closed:
    """The server closed the connection (FIN or RST)."""

    def __init__(self, how: str):
        self.how = how

    def __str__(self):
        return f"connection closed ({self.how})"


class Frame:
    def __init__(self, type_: int, flags: int, stream: int, payload: bytes):
        self.type, self.flags, self.stream, self.payload = type_, flags, stream, payload
        self.fields = None  # the decoded header block, on the frame that ended it

    @property
    def error_code(self) -> int:
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        raise ValueError("no error code")

    @property
    def last_stream(self) -> int:
        return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF

    @property
    def status(self):
        return dict(self.fields or []).get(":status")

    def __str__(self):
        name = TYPE_NAMES[self.type] if self.type < len(TYPE_NAMES) else f"type 0x{self.type:x}"
        where = f" stream {self.stream}" if self.stream else ""
        end = " END_STREAM" if self.type in (DATA, HEADERS) and self.flags & END_STREAM else ""
        if self.type == GOAWAY:
            debug = self.payload[8:].decode("utf-8", "replace")
            return f"GOAWAY {error_name(self.error_code)} (last stream {self.last_stream}{', ' + repr(debug) if debug else ''})"
        if self.type == RST_STREAM:
            return f"RST_STREAM{where} {error_name(self.error_code)}"
        if self.type == HEADERS:
            return f"HEADERS{where} :status {self.status}{end}" if self.fields is not None else f"HEADERS{where}{end}"
        if self.type == DATA:
            return f"DATA{where} {len(self.payload)} bytes{end}"
        if self.type in (SETTINGS, PING):
            return f"{name}{' ACK' if self.flags & ACK else ''}"
        if self.type == WINDOW_UPDATE:
            return f"WINDOW_UPDATE{where or ' stream 0'} +{struct.unpack('>I', self.payload)[0]}"
        return f"{name}{where}"


class Client:
    """One connection to the server, in raw frames: `send` writes bytes as given, `read` returns
    the server's next frame (header blocks decoded), `Closed`, or None when nothing came in time."""

    def __init__(self, port: int, tls_context: ssl.SSLContext | None = None):
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = tls_context.wrap_socket(raw, server_hostname="localhost") if tls_context else raw
        self.buffer = b""
        self.closed: Closed | None = None
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.block: list | None = None  # [stream, fragments] while a header block continues
        self.received: list = []  # everything read, for the evidence of a failure
        self.mark = 0
        self.server_settings: dict[int, int] = {}
        self.first_frame = None
        self.pending: list = []  # frames read for another stream while waiting for one (expect_response)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, *chunks: bytes) -> None:
        """Writes the bytes; a server that already closed (it may, after a connection error) is
        not an error here: the checks read the close."""
        try:
            self.sock.sendall(b"".join(chunks))
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
            pass

    def preface(self) -> None:
        """The client connection preface built by h2: the magic octets and h2's SETTINGS frame."""
        connection = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
        connection.initiate_connection()
        self.send(connection.data_to_send())

    def handshake(self) -> None:
        """Preface, then frames until the server's SETTINGS (acknowledged) and its ACK of ours."""
        self.preface()
        got_settings = got_ack = False
        while not (got_settings and got_ack):
            event = self.read()
            if not isinstance(event, Frame):
                raise Failure(f"handshake: {event or 'nothing within %.1f s' % TIMEOUT} after the preface")
            if event.type == SETTINGS and event.flags & ACK:
                got_ack = True
            elif event.type == SETTINGS:
                got_settings = True
                self.send(settings(ack=True))
        self.mark = len(self.received)

    def header_block(self, fields) -> bytes:
        return self.encoder.encode(fields)

    def read(self, timeout: float = TIMEOUT):
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buffer) >= 9:
                length = int.from_bytes(self.buffer[:3], "big")
                if len(self.buffer) >= 9 + length:
                    header, payload = self.buffer[:9], self.buffer[9:9 + length]
                    self.buffer = self.buffer[9 + length:]
                    found = Frame(header[3], header[4], int.from_bytes(header[5:9], "big") & 0x7FFFFFFF, payload)
                    self._absorb(found)
                    self.received.append(found)
                    return found
            if self.closed:
                return self.closed
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return None
            except ssl.SSLError as error:
                self.closed = Closed(f"TLS: {error.reason or error}")
                self.received.append(self.closed)
                continue
            except (ConnectionResetError, BrokenPipeError, OSError) as error:
                self.closed = Closed("reset" if isinstance(error, ConnectionResetError) else str(error))
                self.received.append(self.closed)
                continue
            if not chunk:
                self.closed = Closed("EOF")
                self.received.append(self.closed)
                continue
            self.buffer += chunk

    def _absorb(self, found: Frame) -> None:
        """Keeps the HPACK decoder in step (header blocks decoded in order) and notes SETTINGS."""
        if self.first_frame is None:
            self.first_frame = found
        if found.type == SETTINGS and not found.flags & ACK:
            for offset in range(0, len(found.payload) - 5, 6):
                key, value = struct.unpack(">HI", found.payload[offset:offset + 6])
                self.server_settings[key] = value
        if found.type in (HEADERS, PUSH_PROMISE):
            payload = found.payload
            pad = 0
            if found.flags & PADDED:
                pad, payload = payload[0], payload[1:]
            if found.type == HEADERS and found.flags & PRIORITY_FLAG:
                payload = payload[5:]
            if found.type == PUSH_PROMISE:
                payload = payload[4:]
            self.block = [found.stream, payload[:len(payload) - pad]]
        elif found.type == CONTINUATION and self.block:
            self.block[1] += found.payload
        else:
            return
        if found.flags & END_HEADERS and self.block:
            try:
                found.fields = self.decoder.decode(self.block[1])
            except Exception as error:  # noqa: BLE001 - shown as evidence
                found.fields = [(":status", f"<undecodable header block: {error}>")]
            self.block = None

    def evidence(self, since: int | None = None, limit: int = 8) -> str:
        seen = self.received[self.mark if since is None else since:]
        if not seen:
            return "nothing"
        text = ", ".join(str(item) for item in seen[:limit])
        return text + (f", … ({len(seen) - limit} more)" if len(seen) > limit else "")


class Failure(Exception):
    """A case's expectation not met; the message says what was expected and what came instead."""


def codes_text(codes) -> str:
    return " or ".join(error_name(code) for code in codes)


def expect_connection_error(client: Client, *codes: int) -> str:
    """A connection error (§5.4.1): GOAWAY with one of `codes`, or the connection closed. A GOAWAY
    with another code fails."""
    while True:
        event = client.read()
        if event is None:
            raise Failure(f"expected GOAWAY {codes_text(codes)}; got {client.evidence()}, and the connection stayed open")
        if isinstance(event, Closed):
            return f"{event} without GOAWAY"
        if event.type == GOAWAY:
            if event.error_code in codes:
                return f"GOAWAY {error_name(event.error_code)}"
            raise Failure(f"expected GOAWAY {codes_text(codes)}; got {client.evidence()}")


def expect_stream_error(client: Client, stream: int, *codes: int) -> str:
    """A stream error (§5.4.2): RST_STREAM on `stream` with one of `codes`; a connection error with
    one of them is accepted too (§5.4: an endpoint may treat a stream error as a connection error).
    An HTTP response before the reset is allowed (§8.1.1), but does not replace it."""
    while True:
        event = client.read()
        if event is None:
            raise Failure(f"expected RST_STREAM {codes_text(codes)} on stream {stream}; got {client.evidence()}")
        if isinstance(event, Closed):
            return f"{event}"
        if event.type == RST_STREAM and event.stream == stream:
            if event.error_code in codes:
                return f"RST_STREAM {error_name(event.error_code)}"
            raise Failure(f"expected RST_STREAM {codes_text(codes)} on stream {stream}; got {client.evidence()}")
        if event.type == GOAWAY:
            if event.error_code in codes:
                return f"GOAWAY {error_name(event.error_code)}"
            raise Failure(f"expected RST_STREAM {codes_text(codes)} on stream {stream}; got {client.evidence()}")


def expect_alive(client: Client, what: str = "the connection to go on") -> str:
    """The connection still works: a PING is answered by a PING ACK with the same data, and nothing
    before it is a GOAWAY or the connection's end."""
    token = os.urandom(8)
    client.send(ping(token))
    while True:
        event = client.read()
        if event is None:
            raise Failure(f"expected {what} (a PING ACK); got {client.evidence()}")
        if isinstance(event, Closed):
            raise Failure(f"expected {what}; got {client.evidence()}")
        if event.type == GOAWAY:
            raise Failure(f"expected {what}; got {client.evidence()}")
        if event.type == PING and event.flags & ACK and event.payload == token:
            return "PING ACK"


def expect_response(client: Client, stream: int, status: str = "200", body: bytes | None = None,
                    timeout: float = TIMEOUT) -> tuple[list, bytes]:
    """The response on `stream`: HEADERS with `status`, then DATA to END_STREAM. Returns the fields
    and the body."""
    aside: list = []  # other streams' frames, read again by whoever waits for them
    try:
        return _response(client, stream, status, body, timeout, aside)
    finally:
        client.pending = aside + client.pending


def _response(client, stream, status, body, timeout, aside):
    fields, received = None, b""
    deadline = time.monotonic() + timeout
    while True:
        event = client.read(max(deadline - time.monotonic(), 0.01))
        if event is None or isinstance(event, Closed):
            raise Failure(f"expected a {status} response on stream {stream}; got {client.evidence()}")
        if event.type == GOAWAY or (event.type == RST_STREAM and event.stream == stream):
            raise Failure(f"expected a {status} response on stream {stream}; got {client.evidence()}")
        if event.stream != stream:
            if event.stream and event.type in (HEADERS, DATA, RST_STREAM):
                aside.append(event)
            continue
        if event.type == HEADERS and event.fields is not None and fields is None:
            fields = event.fields
            if event.status != status:
                raise Failure(f"expected a {status} response on stream {stream}; got {client.evidence()}")
        elif event.type == DATA:
            received += event.payload[1:len(event.payload) - event.payload[0]] if event.flags & PADDED else event.payload
        if event.type in (HEADERS, DATA) and event.flags & END_STREAM:
            if body is not None and received != body:
                raise Failure(f"expected body {body[:40]!r} on stream {stream}; got {received[:40]!r} ({len(received)} bytes)")
            return fields, received
