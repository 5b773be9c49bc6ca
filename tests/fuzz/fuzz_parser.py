"""Fuzz the event-stream parser (ssesync._parser.Parser).

Each input is split into a header and a payload. The header bytes choose how
the payload is cut into reads, the ``max_event_size``, strict mode, and
whether the parser's one-pass and long-block paths are forced on every read
(it otherwise picks them from what the last read looked like); the payload
is the stream. For every input the harness checks that:

* the parser raises nothing but ``SSEParsingError``;
* ``buffered`` never exceeds ``max_event_size`` after a read that succeeded;
* the cut reads raise exactly when one read of the whole payload raises, and
  give the same items, last event ID and (after ``end()``) retry when neither
  raises;
* in lenient mode with the default size limit, the items, last event ID and
  reconnection time match the slow spec reference in tests/spec_reference.py.

With atheris (coverage-guided, libFuzzer flags pass through)::

    python tests/fuzz/fuzz_parser.py -max_total_time=60

Without atheris (random inputs, same checks)::

    python tests/fuzz/fuzz_parser.py --no-atheris -runs=10000 [-seed=N]

Both modes also take file paths: each file is run once as an input (libFuzzer
writes ``crash-*`` files that can be replayed this way).
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Sequence
from typing import Optional, Union

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

USE_ATHERIS = "--no-atheris" not in sys.argv
if USE_ATHERIS:
    import atheris

    with atheris.instrument_imports(include=["ssesync"]):
        from ssesync import Event, SSEParsingError
        from ssesync._parser import DEFAULT_MAX_EVENT_SIZE, Parser
else:
    from ssesync import Event, SSEParsingError
    from ssesync._parser import DEFAULT_MAX_EVENT_SIZE, Parser

from tests.parser_helpers import Item, canon, canon_retry, encode  # noqa: E402
from tests.spec_reference import ReferenceStream  # noqa: E402

#: Bits of the first header byte that force a parser path on every read.
FORCE_ONE_PASS = 0x20
FORCE_LONG_BLOCKS = 0x40

#: Small ``max_event_size`` choices for the second header byte.
SMALL_SIZES = (1, 2, 3, 5, 8, 13, 16, 32, 64, 100, 255)


def decode_input(data: bytes) -> Optional[tuple[list[bytes], bytes, int, bool, int]]:
    """Split a fuzzer input into (reads, payload, max_event_size, strict, force).

    Byte 0: low 4 bits = number of cuts, bit 4 = strict mode, bits 5 and 6
    (``force``) = force the one-pass path and the long-block path.
    Byte 1: below 0x80 the default ``max_event_size``, else
    SMALL_SIZES[byte % len(SMALL_SIZES)].
    Then one byte per cut: the length of that read (0 gives an empty read).
    The rest is the payload; what the cuts leave over is the last read.
    """
    if len(data) < 2:
        return None
    cuts = data[0] & 0x0F
    strict = bool(data[0] & 0x10)
    force = data[0] & (FORCE_ONE_PASS | FORCE_LONG_BLOCKS)
    small = SMALL_SIZES[data[1] % len(SMALL_SIZES)]
    max_size = DEFAULT_MAX_EVENT_SIZE if data[1] < 0x80 else small
    lengths = data[2 : 2 + cuts]
    payload = data[2 + cuts :]
    reads: list[bytes] = []
    at = 0
    for length in lengths:
        reads.append(payload[at : at + length])
        at = min(at + length, len(payload))
    reads.append(payload[at:])
    return reads, payload, max_size, strict, force


Outcome = tuple[list[Item], str, object, bool]


def run(reads: Sequence[bytes], max_size: int, strict: bool, force: int = 0) -> Outcome:
    """Feed ``reads`` and end; (items, last_event_id, retry, raised); check the bound."""
    parser = Parser(max_event_size=max_size, strict=strict)
    items: list[Union[Event, str]] = []
    for piece in reads:
        if force & FORCE_ONE_PASS:
            parser._structured, parser._structured_skip = True, 0
        if force & FORCE_LONG_BLOCKS:
            parser._long_blocks = True
        try:
            items.extend(parser.feed(piece))
        except SSEParsingError:
            return canon(encode(items)), parser.last_event_id, None, True
        assert parser.buffered <= max_size, (parser.buffered, max_size)
    parser.end()
    return canon(encode(items)), parser.last_event_id, canon_retry(parser.retry), False


def check_one_input(data: bytes) -> None:
    decoded = decode_input(data)
    if decoded is None:
        return
    reads, payload, max_size, strict, force = decoded
    assert b"".join(reads) == payload
    cut = run(reads, max_size, strict, force)
    one = run([payload], max_size, strict)
    assert cut[3] == one[3], ("cut reads raised", cut[3], "one read raised", one[3])
    if not one[3]:
        assert cut == one, ("cut reads differ from one read", cut, one)
    if max_size == DEFAULT_MAX_EVENT_SIZE and not strict:
        reference = ReferenceStream()
        reference.parse(payload)
        expected = (
            canon(reference.items),
            reference.last_event_id,
            canon_retry(reference.reconnection_time),
            False,
        )
        assert one == expected, ("differs from the reference", one, expected)


# -- standalone mode ---------------------------------------------------------------------

TOKENS = (
    b"data", b"data:", b"data: ", b"event: ", b"id: ", b"id", b"retry: ", b"retry:",
    b": ", b":", b"\n", b"\n", b"\n", b"\r\n", b"\r", b"\r\n\r\n", b"\n\n", b"\r\r",
    b"x", b"hello", b"12", b"1.5", b"\x00", b"\xef\xbb\xbf", b"\xef", b"\xbb\xbf",
    b"\xc3\xa9", b"\xc3", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xff", b"\x80",
    b"foo: bar", b"  ", b" ", "\u0661".encode(),
)  # fmt: skip

NAMES = (b"data", b"data", b"data", b"event", b"id", b"retry", b"", b"foo", b"Data", b"dat")
SEPARATORS = (b": ", b": ", b":", b":  ", b"")
VALUES = (
    b"", b"x", b"hello world", b" x", b"12", b"007", b"1.5", b"\x00", b"a\x00b",
    b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xef\xbb\xbf", b"\xff", b"\xc3",
    b"9" * 20, b":", "\u0661\u0662".encode(),
)  # fmt: skip
LINE_ENDS = (b"\n", b"\r\n", b"\r")


def random_stream(rng: random.Random) -> bytes:
    """Lines of fields, comments and blank lines, with mixed line ends."""
    parts = [b"\xef\xbb\xbf" * rng.choice((0, 0, 1, 2))]
    for _ in range(rng.randrange(30)):
        if rng.random() < 0.3:
            line = b""  # blank: dispatch
        else:
            value = b"".join(rng.choice(VALUES) for _ in range(rng.randrange(3)))
            line = rng.choice(NAMES) + rng.choice(SEPARATORS) + value
        parts.append(line + rng.choice(LINE_ENDS))
    if rng.random() < 0.3:
        parts.append(rng.choice(NAMES) + b": x")  # an unterminated last line
    return b"".join(parts)


def random_input(rng: random.Random) -> bytes:
    """A header and a payload: a stream of lines, tokens, or raw bytes."""
    cuts = rng.randrange(16)
    strict = 0x10 if rng.random() < 0.25 else 0
    force = rng.choice((0, 0, FORCE_ONE_PASS, FORCE_LONG_BLOCKS))
    size = rng.randrange(0x80) if rng.random() < 0.7 else rng.randrange(0x80, 0x100)
    header = bytes([cuts | strict | force, size])
    kind = rng.random()
    if kind < 0.6:
        payload = random_stream(rng)
    elif kind < 0.9:
        payload = b"".join(rng.choice(TOKENS) for _ in range(rng.randrange(80)))
    else:
        payload = rng.randbytes(rng.randrange(200))
    lengths = bytes(rng.randrange(min(256, len(payload) + 2)) for _ in range(cuts))
    return header + lengths + payload


def standalone(argv: Sequence[str]) -> int:
    runs = 10000
    seed = 0
    paths = []
    for arg in argv:
        if arg.startswith("-runs="):
            runs = int(arg.split("=", 1)[1])
        elif arg.startswith("-seed="):
            seed = int(arg.split("=", 1)[1])
        elif arg == "--no-atheris":
            pass
        elif arg.startswith("-"):
            print(f"ignoring option {arg} (libFuzzer options need atheris)")
        else:
            paths.append(arg)
    if paths:
        for path in paths:
            with open(path, "rb") as file:
                check_one_input(file.read())
            print(f"{path}: ok")
        return 0
    rng = random.Random(seed)
    started = time.perf_counter()
    for number in range(runs):
        data = random_input(rng)
        try:
            check_one_input(data)
        except Exception:
            print(f"FAILED on run {number} (seed {seed}); input:\n{data!r}", file=sys.stderr)
            raise
    elapsed = time.perf_counter() - started
    print(f"standalone fuzz: {runs} runs, seed {seed}, {elapsed:.1f} s, no failures")
    return 0


def main() -> int:
    if not USE_ATHERIS:
        return standalone(sys.argv[1:])
    atheris.Setup(sys.argv, check_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
