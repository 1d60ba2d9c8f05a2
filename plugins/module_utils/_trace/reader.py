# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: a streaming reader of Kineto trace JSON (gzip or plain).

The gzip (or plain) file is decoded in 1 MiB chunks and the ``traceEvents`` array is parsed one
event at a time with the C JSON scanner, so memory does not grow with the size of the JSON.
Runs of python_function events (the bulk of a with-stack trace) can be read in bulk.

Optional backends, each used only where it is installed: ``msgspec`` decodes the events between
python_function runs a buffer at a time with a typed decoder that builds only the fields a summary reads
(``Event``), and ``isal`` (ISA-L) inflates gzip about twice as fast as zlib. The standard library path stays,
gives the same summaries (the unit tests compare them on every fixture), and is what runs without them or
with ``VLLM_INFRA_TRACE_BACKEND=stdlib``.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import re
import typing as t
import zlib

CHUNK = 1 << 20

_WS = re.compile(r"[ \t\n\r]*")
_SCAN = json.JSONDecoder().scan_once
_PY_HEAD = re.compile(r'\{\s*"ph":\s*"X",\s*"cat":\s*"python_function"')
_NOT_PY_CAT = re.compile(r'"cat":\s*"(?!python_function")')
_PY_NEAR = 1 << 14
# From the module name's opening quote on: found with str.find (a memchr-speed search for a rare
# string) and then matched, instead of a regex search that stops at every "name" key of the run.
_PY_MODULE = re.compile(
    r'"(nn\.Module: [^"\\]*)",\s*"pid":[^,]*,\s*"tid":[^,]*,'
    r'\s*"ts":\s*(-?[\d.]+(?:[eE][-+]?\d+)?),\s*"dur":\s*(-?[\d.]+(?:[eE][-+]?\d+)?)'
)


# Kineto's own layout of an event (its writer's indentation: the event at 2 spaces, its keys at 4):
#   {\n    "ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 412, "tid": 412,\n    "ts": 1.5, "dur": 2.0,\n ...
# or a flow event {\n    "ph": "s", ... (ac2g arrows, which no summary reads). A raw newline cannot occur inside a
# JSON string, so such an event ends at the first line that is two spaces and "}".
# Strict JSON numbers and strings (no leading zeros, no raw control characters): what json would reject is not
# matched, so it is decoded whole and reported as json reports it.
_INT = r"(-?(?:0|[1-9]\d*))"
_NUM = r"(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_STR = r'"([^"\\\x00-\x1f]*)"'
_LEAN_HEAD = (
    r'\{\n    "ph": "(?:X", "cat": ' + _STR + r', "name": ' + _STR + r', "pid": ' + _INT + r', "tid": ' + _INT + ","
    r'\n    "ts": ' + _NUM + r', "dur": ' + _NUM + r'[,\n]|[sf]", )'
)  # compiled on first use (start-up time: with msgspec it is seldom needed)


def _py_modules(buf: str, pos: int, end: int) -> list[tuple[str, float, float]]:
    """The ``nn.Module`` events (name, ts, dur) of the python_function run ``buf[pos:end]``:
    a ``"name":`` key, then the module name, pid, tid, ts and dur (Kineto's order)."""
    found = []
    find, match = buf.find, _PY_MODULE.match
    i = find('"nn.Module: ', pos, end)
    while i >= 0:
        k = i
        while k > pos and buf[k - 1].isspace():
            k -= 1
        m = match(buf, i, end)
        if m is not None and k - 7 >= pos and buf.startswith('"name":', k - 7):
            found.append((m.group(1), float(m.group(2)), float(m.group(3))))
        i = find('"nn.Module: ', i + 1, end)
    return found


def _number(text: str) -> int | float:
    """A JSON number as ``json`` decodes it: an int without a fraction or exponent, else a float."""
    return float(text) if "." in text or "e" in text or "E" in text else int(text)


class PythonRun(t.NamedTuple):
    """A run of python_function events read in bulk: how many, and the nn.Module ones (name, ts, dur)."""

    events: int
    modules: list[tuple[str, float, float]]


class Elided(t.NamedTuple):
    """An event read without decoding it: a flow event (``ph`` s/f) in the lean mode (see ``array_items``)."""

    events: int


ELIDED = Elided(1)


class TraceError(Exception):
    """A trace or CSV that cannot be read; the message names the file."""


class _Absent:
    """The default of an ``Args`` field that the event's args do not have (json's dict would lack the key)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
# The fields of an event that a summary reads, for the optional msgspec decoder: it skips the others (a
# cpu_op's input shapes, a kernel's grid) without building them. Absent fields read as json's dict.get does:
# None for the event's own keys, ABSENT for the keys of its args (a kernel's device defaults to its pid).
EVENT_FIELDS = ("ph", "cat", "name", "pid", "tid", "ts", "dur")
ARGS_FIELDS = ("device", "stream", "correlation", "name")
BACKEND_ENV = "VLLM_INFRA_TRACE_BACKEND"  # "stdlib": neither msgspec nor isal, even where installed
# The optional backends once looked for: "json": (decoder, Event class, error class) or None; "inflate": the
# zlib-compatible module that inflates gzip (isal's isal_zlib where installed, else zlib).
_LOADED: dict[str, t.Any] = {}


def _optional(key: str, fallback: t.Any, load: t.Callable[[], t.Any]) -> t.Any:
    """``load()`` once (what ``load`` imports is optional), else ``fallback``: also without trying under
    ``VLLM_INFRA_TRACE_BACKEND=stdlib`` or when the import fails."""
    if key not in _LOADED:
        _LOADED[key] = fallback
        if os.environ.get(BACKEND_ENV, "") != "stdlib":
            with contextlib.suppress(ImportError):
                _LOADED[key] = load()
    return _LOADED[key]


def _load_isal() -> t.Any:
    from isal import isal_zlib  # noqa: PLC0415 - optional, and only to read a gzip trace

    return isal_zlib


def _load_msgspec() -> t.Any:
    import msgspec  # noqa: PLC0415 - optional, and only to read a trace

    args = msgspec.defstruct("Args", [(k, t.Any, ABSENT) for k in ARGS_FIELDS])
    event = msgspec.defstruct("Event", [*((k, t.Any, None) for k in EVENT_FIELDS), ("args", args | None, None)])
    return msgspec.json.Decoder(list[event]), event, msgspec.DecodeError


def inflate_module() -> t.Any:
    """``isal.isal_zlib`` where installed (the same API as zlib's, ISA-L's inflate), else ``zlib``."""
    return _optional("inflate", zlib, _load_isal)


def fast_backend() -> t.Any:
    """``(decoder, Event, error)`` of the optional msgspec backend, or None (not installed, or
    ``VLLM_INFRA_TRACE_BACKEND=stdlib``). The decoder turns ``[event, ...]`` text into a list of ``Event``."""
    return _optional("json", None, _load_msgspec)


class JsonScanner:
    """Incremental scanner of one top-level JSON value whose ``traceEvents`` array may be huge."""

    def __init__(self, path: str, chunk: int | None = None) -> None:
        self.path = path
        self.chunk = chunk or CHUNK
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.consumed = 0
        self.bytes_in = 0
        try:
            self._raw: t.BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise TraceError(f"{path}: cannot open ({exc.strerror or exc})") from None
        # zlib and the UTF-8 decoder directly, not gzip.open(..., "rt"): the gzip module's Python
        # layers (a CRC pass of its own, buffered readers, TextIOWrapper) cost about a third of
        # the time of a bulk python_function run; zlib checks the gzip trailer's CRC itself.
        self._zip: t.Any = None
        self._inflate = zlib
        self._pending = self._raw.read(2)
        if self._pending == b"\x1f\x8b":
            self._inflate = inflate_module()
            self._zip = self._inflate.decompressobj(31)
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._fast_from = 0  # where the msgspec decoder may be tried again after text it did not take

    def close(self) -> None:
        self._raw.close()

    def _bytes(self, size: int) -> bytes:
        """Up to ``size`` bytes of uncompressed JSON (b"" only at the end of the file)."""
        while True:
            z = self._zip
            if z is not None and z.unconsumed_tail and not z.eof:
                data = z.unconsumed_tail
            else:
                data = self._pending or self._raw.read(size if z is None else max(size // 8, 1 << 16))
                self._pending = b""
                if z is None:
                    return data
                if z.eof:  # the end of a gzip member: another may follow (gzip reads them all too)
                    data = z.unused_data + data
                    if not data:
                        return b""
                    z = self._zip = self._inflate.decompressobj(31)
            try:
                out = z.decompress(data, size)
            except self._inflate.error as exc:
                raise TraceError(f"{self.path}: corrupt gzip data ({exc})") from None
            if out:
                return out
            if not data:
                raise TraceError(f"{self.path}: truncated gzip stream (the file ends before the compressed data)")

    def more(self, size: int = 0) -> bool:
        if self.eof:
            return False
        size = size or self.chunk
        while True:
            data = self._bytes(size)
            try:
                chunk = self._text.decode(data, not data)
            except UnicodeDecodeError as exc:
                raise TraceError(f"{self.path}: not UTF-8 text, so not a JSON trace ({exc.reason})") from None
            if chunk or not data:
                break
        if not chunk:
            self.eof = True
            return False
        self.bytes_in += len(chunk)
        if self.pos:
            self.consumed += self.pos
            self.buf = self.buf[self.pos :] + chunk
            self.pos = 0
        else:
            self.buf += chunk
        return True

    def peek(self) -> str:
        """Skip whitespace; return the next character ('' at the end)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def expect(self, char: str, what: str) -> None:
        got = self.peek()
        if got != char:
            self.fail(f"expected {what}, found {got!r}" if got else f"expected {what}, found the end of the file")
        self.pos += 1

    def fail(self, why: str) -> t.NoReturn:
        raise TraceError(f"{self.path}: not valid trace JSON at character {self.consumed + self.pos}: {why}")

    def value(self) -> t.Any:
        self.peek()
        grow = self.chunk
        while True:
            err, err_pos = "incomplete value", len(self.buf)
            try:
                obj, end = _SCAN(self.buf, self.pos)
                # A number cut at the end of the buffer would parse short: make sure more text follows.
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return obj
            except StopIteration as exc:
                err, err_pos = "no JSON value here", exc.value
            except ValueError as exc:
                err, err_pos = getattr(exc, "msg", str(exc)), getattr(exc, "pos", len(self.buf))
            if not self.more(grow):
                if err_pos >= len(self.buf) - 1:
                    self.fail("the file ends in the middle of a value (truncated?)")
                self.pos = err_pos
                self.fail(err)
            grow = min(grow * 2, 64 * max(self.chunk, CHUNK))

    def python_region(self, pos: int) -> tuple[int, int]:
        """End of the run of python_function events that starts at ``pos`` (0: none to skip), and its events.

        Stack capture writes hundreds of thousands of python_function events in one run. Their
        ``args`` are not needed, only ``nn.Module`` names and times: the run is counted and
        searched with C string operations instead of being decoded event by event. The run ends
        before the next event of another category, or before the last event start in the buffer
        (which may be incomplete). JSON strings cannot hold an unescaped quote, so ``"cat": "``
        in the raw text is always a key.
        """
        buf = self.buf
        if not _PY_HEAD.match(buf, pos):
            return 0, 0
        # A short run (a GPU trace's, between cpu_ops) ends within a few KiB: look there first.
        other = _NOT_PY_CAT.search(buf, pos, pos + _PY_NEAR)
        if other is None:
            # The run up to the last event start in the buffer (that event may be incomplete): two counts (C string
            # search) say whether each of its events (a "ph" key each) is a python_function event, the common case
            # (a run that fills the buffer), and count them. Only otherwise is the first event of another category
            # searched for.
            last = buf.rfind('"ph"', pos)
            end = buf.rfind("{", pos, last) if last > 0 else -1
            if end <= pos:
                return 0, 0
            events = buf.count('"ph"', pos, end)
            if events == buf.count('"cat": "python_function"', pos, end):
                return end, events
            other = _NOT_PY_CAT.search(buf, pos)
            if other is None:
                return end, events
        end = buf.rfind("{", pos, other.start())
        return (end, buf.count('"ph"', pos, end)) if end > pos else (0, 0)

    def fast_events(self, buf: str, pos: int, fast: t.Any) -> list[t.Any] | None:
        """The events from ``pos`` to the last whole event before the next python_function one, decoded by
        msgspec as ``Event`` structs; None (read them one by one) where there is no such stretch or msgspec
        does not take it (another layout, NaN, a lone surrogate, an args that is not an object, ...).

        In Kineto's layout an event at the array's level ends with a line that is two spaces and "}" (a raw
        newline cannot occur in a JSON string, nested objects are indented further). If a "\n  }" closes
        something else, the text is not a list of whole values and the decoder rejects it: it never takes a
        part of an event. python_function events are left to ``python_region``, as without msgspec.
        """
        if self.consumed + pos < self._fast_from:
            return None
        limit = buf.find('"cat": "python_function"', pos)
        close = buf.rfind("\n  }", pos, len(buf) if limit < 0 else limit)
        if close < 0:
            return None
        end = close + 4
        nxt = _WS.match(buf, end).end()
        if nxt >= len(buf) or buf[nxt] not in ",]":
            return None
        decoder, _event, error = fast
        try:
            events = decoder.decode("[" + buf[pos:end] + "]")
        except error:
            self._fast_from = self.consumed + end  # read this stretch with json, event by event
            return None
        self.pos = end
        return events

    def lean_event(self, buf: str, pos: int, lean: t.Container[str]) -> t.Any:
        """The event at ``pos`` without its ``args`` (``ELIDED`` for a flow event), or None to decode it whole.

        Only for Kineto's own layout (``_LEAN_HEAD``) and an ``X`` event whose category is in ``lean``: its
        ph, cat, name, pid, tid, ts and dur, as ``json`` would give them (a name with an escape, a pid that
        is not an integer, or any other layout is decoded whole). Decoding the ``args`` of a cpu_op (input
        shapes and types, lists of lists) costs more than the rest of the event.
        """
        head = _LOADED.get("lean_head") or _LOADED.setdefault("lean_head", re.compile(_LEAN_HEAD))
        m = head.match(buf, pos)
        if m is None:
            return None
        cat = m.group(1)
        if cat is not None and cat not in lean:
            return None
        head_end = m.end()
        close = buf.find("\n  }", head_end - 1)  # - 1: the head may end with the newline before "  }"
        # The whole event must be in the buffer, and be one event: no other event's "ph" key before its end
        # ('"ph"' followed by ':' can only be a key - a JSON string holds no raw quote).
        if close < 0 or buf.find('"ph":', head_end, close) >= 0:
            return None
        self.pos = close + 4
        if cat is None:
            return ELIDED
        name, pid, tid, ts, dur = m.group(2, 3, 4, 5, 6)
        return {
            "ph": "X",
            "cat": cat,
            "name": name,
            "pid": int(pid),
            "tid": int(tid),
            "ts": _number(ts),
            "dur": _number(dur),
        }

    def array_items(
        self, skip_python: bool = False, lean: t.Container[str] | None = None, fast: bool = False
    ) -> t.Iterator[t.Any]:
        """Yield the elements of the array whose '[' was just consumed.

        ``skip_python``: runs of python_function events come as one ``PythonRun`` each
        (see ``python_region``) instead of one dict per event. ``lean`` (with ``skip_python``): events of
        these categories come without their ``args``, and flow events as ``ELIDED`` (see ``lean_event``).
        ``fast`` (with ``skip_python``): where msgspec is installed, the other events come as ``Event`` structs
        (see ``fast_events``); any it does not take come as without it.
        """
        backend = fast_backend() if fast and skip_python else None
        if self.peek() == "]":
            self.pos += 1
            return
        scan, ws = _SCAN, _WS.match
        # Refill before the buffer runs low rather than after a scan fails at its end: a failed
        # scan raises JSONDecodeError, which counts the lines of the whole buffer for its message
        # (that alone was a tenth of the time of a big trace).
        low = self.chunk >> 2
        while True:
            if len(self.buf) - self.pos < low and not self.eof:
                self.more()
            buf, pos = self.buf, self.pos
            obj = None
            if skip_python and buf[pos] == "{":
                end, events = self.python_region(pos)
                if end:
                    yield PythonRun(events, _py_modules(buf, pos, end))
                    self.pos = end
                    continue
                if backend is not None:
                    obj = self.fast_events(buf, pos, backend)
                    if obj is not None:
                        yield from obj  # (obj, a list, is not None: the separator follows)
                if obj is None and lean is not None:
                    obj = self.lean_event(buf, pos, lean)
                    if obj is not None:
                        yield obj
            if obj is None:
                try:
                    obj, end = scan(buf, pos)
                except (StopIteration, ValueError):
                    obj, end = None, -1
                if end < 0 or (end >= len(buf) and not self.eof):
                    obj = self.value()  # slow path: refill and retry (or report the error)
                else:
                    self.pos = end
                yield obj
            pos = ws(self.buf, self.pos).end()
            if pos >= len(self.buf):
                self.pos = pos
                sep = self.peek()
                pos = self.pos
            else:
                sep = self.buf[pos]
            if sep == ",":
                self.pos = ws(self.buf, pos + 1).end()
                if self.pos >= len(self.buf):
                    self.peek()
                continue
            if sep == "]":
                self.pos = pos + 1
                return
            self.pos = pos
            self.fail("expected ',' or ']' between trace events" if sep else "the file ends inside traceEvents")


class TraceRead:
    """One trace file, read as a stream: iterate it for the events, then read ``meta``.

    The top-level keys other than ``traceEvents`` may follow the array in the file, so ``meta``
    (and ``bytes``) exist only once the events have been read to the end; asking earlier is an
    error rather than a silently incomplete answer.
    """

    def __init__(
        self,
        path: str,
        chunk: int | None = None,
        skip_python: bool = False,
        lean: t.Container[str] | None = None,
        fast: bool = False,
    ) -> None:
        self.path = path
        self.fast = fast
        self.chunk = chunk
        self.skip_python = skip_python
        self.lean = lean
        self._meta: dict[str, t.Any] | None = None
        self.has_events = False
        self.bytes = 0

    @property
    def meta(self) -> dict[str, t.Any]:
        if self._meta is None:
            raise RuntimeError(f"{self.path}: read the events before the metadata")
        return self._meta

    def __iter__(self) -> t.Iterator[t.Any]:
        """Yield the events one at a time (``PythonRun`` items for runs of python_function events
        when ``skip_python``). Raises ``TraceError`` naming the file for anything that is not a
        readable trace."""
        path = self.path
        meta: dict[str, t.Any] = {}
        stream = JsonScanner(path, self.chunk)
        try:
            first = stream.peek()
            if first == "":
                raise TraceError(f"{path}: empty file")
            if first == "[":  # Chrome's "JSON array format": a bare list of events
                stream.pos += 1
                self.has_events = True
                yield from stream.array_items(self.skip_python, self.lean, self.fast)
                self.bytes = stream.consumed + stream.pos
                self._meta = meta
                return
            if first != "{":
                raise TraceError(f"{path}: not JSON (starts with {stream.buf[stream.pos : stream.pos + 20]!r})")
            stream.pos += 1
            if stream.peek() == "}":
                stream.pos += 1
            else:
                while True:
                    key = stream.value()
                    if not isinstance(key, str):
                        stream.fail("expected a key")
                    stream.expect(":", "':' after a key")
                    if key == "traceEvents" and stream.peek() == "[":
                        stream.pos += 1
                        self.has_events = True
                        yield from stream.array_items(self.skip_python, self.lean, self.fast)
                    else:
                        meta[key] = stream.value()
                    sep = stream.peek()
                    stream.pos += 1
                    if sep == "}":
                        break
                    if sep != ",":
                        stream.pos -= 1
                        stream.fail("expected ',' or '}' after a top-level value")
            if stream.peek() != "":
                stream.fail("text after the end of the JSON object")
            self.bytes = stream.consumed + stream.pos
            self._meta = meta
        finally:
            stream.close()


def read_trace(
    path: str,
    chunk: int | None = None,
    skip_python: bool = False,
    lean: t.Container[str] | None = None,
    fast: bool = False,
) -> TraceRead:
    """The trace at ``path`` as a ``TraceRead``: iterate it for the events, then take ``.meta``.

    ``chunk``: characters decoded per read (default 1 MiB). ``skip_python``: runs of
    python_function events come as ``PythonRun`` items; with ``lean`` too, events of those categories
    come without ``args`` and flow events as ``ELIDED`` (see ``JsonScanner.lean_event``); with ``fast`` too,
    the other events come as msgspec ``Event`` structs where msgspec is installed (see ``fast_backend``).
    """
    return TraceRead(path, chunk, skip_python, lean, fast)
