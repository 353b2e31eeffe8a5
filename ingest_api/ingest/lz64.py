"""LZ64: LZString's ``compressToBase64``, which posthog-js sent flagged ``compression=lz64`` until
it moved to gzip. Decoded here, with the output capped as gzip's is.

Why not a package: PyPI's ``lzstring`` (1.0.4, 2018) rebuilds its alphabet table for every
character it reads and pulls in ``future``, and neither it nor the newer ports cap what they
write. LZString's dictionary grows by one entry per code, each up to one character longer than
the last, so a few kilobytes can expand to gigabytes; PostHog's own capture caps it too. The
algorithm is lz-string 1.5's ``_decompress`` (pieroxy, MIT), read a code at a time rather than a
bit at a time; tests/ingest_api/ingest/test_posthog_encodings.py checks it against that very
JavaScript.
"""

from __future__ import annotations

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
NOT_IN_ALPHABET = 0xFF
# Each character's six bits in the order LZString reads them (its highest bit first), so that a
# code is the next bits of one little-endian stream.
_READ_ORDER = bytearray([NOT_IN_ALPHABET]) * 256
for _value, _char in enumerate(ALPHABET):
    _READ_ORDER[_char] = int(f"{_value & 0b111111:06b}"[::-1], 2)
BITS_PER_CHAR = 6
CHAR, WIDE_CHAR, END = 0, 1, 2  # LZString's codes for a literal of 8 or 16 bits, and the end


class Lz64Error(ValueError):
    """Not LZString base64."""


class Lz64TooLarge(ValueError):
    """The output would exceed the limit."""


class _Bits:
    """Codes of ``width`` bits, taken from the characters in LZString's reading order."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._next = 0  # the next character to take
        self._buffer = 0
        self._buffered = 0

    def read(self, width: int) -> int:
        while self._buffered < width:
            # Past the end LZString reads zeros; _Bits.exhausted tells when that matters.
            value = self._data[self._next] if self._next < len(self._data) else 0
            self._buffer |= value << self._buffered
            self._buffered += BITS_PER_CHAR
            self._next += 1
        code = self._buffer & ((1 << width) - 1)
        self._buffer >>= width
        self._buffered -= width
        return code

    @property
    def exhausted(self) -> bool:
        """LZString's ``data.index > length``: the character holding the next bit is past the
        end."""
        taken = self._next * BITS_PER_CHAR - self._buffered
        return taken // BITS_PER_CHAR + 1 > len(self._data)


def decompress(text: bytes, limit: int) -> str:
    """``text`` (LZString base64) decompressed: at most ``limit`` UTF-16 code units, each at
    least one byte of the UTF-8 it becomes."""
    data = text.translate(_READ_ORDER)  # "=" pads with zeros, as LZString reads it
    if NOT_IN_ALPHABET in data:
        raise Lz64Error("a character outside base64's alphabet")
    if not data:
        raise Lz64Error("empty")
    bits = _Bits(data)
    first = bits.read(2)
    if first == END:
        return ""
    if first not in (CHAR, WIDE_CHAR):
        raise Lz64Error("it does not start with a literal")
    word = chr(bits.read(8 if first == CHAR else 16))
    dictionary = [CHAR, WIDE_CHAR, END, word]  # codes 0-2 are not entries
    pieces, size = [word], 1
    width, enlarge_in = 3, 4
    while True:
        if bits.exhausted:
            raise Lz64Error("truncated")
        code = bits.read(width)
        if code == END:
            return "".join(pieces)
        if code in (CHAR, WIDE_CHAR):
            dictionary.append(chr(bits.read(8 if code == CHAR else 16)))
            code = len(dictionary) - 1
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in, width = 1 << width, width + 1
        if code < len(dictionary):
            entry = dictionary[code]
        elif code == len(dictionary):
            entry = word + word[0]
        else:
            raise Lz64Error(f"code {code} is not in the dictionary")
        size += len(entry)
        if size > limit:
            raise Lz64TooLarge(f"more than {limit} characters")
        pieces.append(entry)
        dictionary.append(word + entry[0])
        enlarge_in -= 1
        word = entry
        if enlarge_in == 0:
            enlarge_in, width = 1 << width, width + 1


def decompress_to_utf8(text: bytes, limit: int) -> bytes:
    """The JSON text an LZ64 body holds, as UTF-8 (JavaScript strings are UTF-16: their
    surrogate pairs are joined here)."""
    units = decompress(text, limit)
    try:
        body = units.encode("utf-16-le", "surrogatepass").decode("utf-16-le").encode()
    except UnicodeDecodeError:
        raise Lz64Error("it holds an unpaired UTF-16 surrogate") from None
    if len(body) > limit:
        raise Lz64TooLarge(f"more than {limit} bytes")
    return body
