"""Deterministic sample media files and format sniffing, shared by the fake Telegram and OpenAI servers.

The samples are structurally valid files of the declared length or size, small and made without codecs:

* :func:`ogg_opus` - an Ogg/Opus stream (``OpusHead``, ``OpusTags``, 20 ms CELT frames, pages with real
  CRCs and granule positions), as Telegram voice notes and OpenAI's ``opus`` speech are;
* :func:`mp3` - an ID3v2 tag then MPEG-1 Layer III frames (64 kbit/s, 44.1 kHz, mono, silent);
* :func:`mp4` - ``ftyp`` + ``moov/mvhd`` (carrying the duration) + ``mdat``;
* :func:`wav` / :func:`pcm` (16-bit mono silence), :func:`flac` (``STREAMINFO`` only), :func:`aac` (ADTS);
* :func:`jpeg` - a decodable baseline greyscale JPEG of any size (one grey level);
* :func:`pdf` - a one-page PDF showing a line of text.

``seed`` makes otherwise equal samples differ (it lands in a tag, comment or in the payload bytes).
:func:`audio_format`, :func:`audio_duration`, :func:`image_format` and :func:`image_size` read such files
(and real ones) back from their bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

OPUS_RATE = 48_000
OPUS_PRE_SKIP = 312
FALLBACK_BYTES_PER_SECOND = 4_000
"""Bitrate (32 kbit/s, a voice note's) assumed when a file's length cannot be read from it."""

_OGG_SERIAL = 0x0C0FFEE0
_FRAME_SAMPLES = 960  # 20 ms at 48 kHz
_OPUS_FRAME_BYTES = 80  # 32 kbit/s
_MP3_RATE = 44_100
_MP3_FRAME_SAMPLES = 1_152
_MP3_BITRATES = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MP3_RATES = (44_100, 48_000, 32_000)


def filler(size: int, seed: bytes | str = b"") -> bytes:
    """``size`` deterministic pseudo-random bytes."""
    key = seed.encode() if isinstance(seed, str) else seed
    blocks = [hashlib.sha256(key + counter.to_bytes(8, "big")).digest() for counter in range(size // 32 + 1)]
    return b"".join(blocks)[:size]


# --------------------------------------------------------------------------------------------- Ogg / Opus


def _crc_table() -> tuple[int, ...]:
    table = []
    for index in range(256):
        value = index << 24
        for _ in range(8):
            value = ((value << 1) ^ 0x04C11DB7) if value & 0x80000000 else value << 1
        table.append(value & 0xFFFFFFFF)
    return tuple(table)


_OGG_CRC = _crc_table()


def ogg_crc(data: bytes) -> int:
    """The CRC-32 of an Ogg page (polynomial 0x04C11DB7, not reflected, as RFC 3533 says)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


def ogg_page(packets: list[bytes], *, granule: int, sequence: int, flags: int = 0) -> bytes:
    """One Ogg page holding whole ``packets`` (at most 255 lacing values)."""
    lacing = bytearray()
    for packet in packets:
        lacing.extend([255] * (len(packet) // 255) + [len(packet) % 255])
    if len(lacing) > 255:
        raise ValueError("too many packets for one Ogg page")
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, _OGG_SERIAL, sequence, 0, len(lacing))
    page = bytearray(header + bytes(lacing) + b"".join(packets))
    struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
    return bytes(page)


def ogg_opus(seconds: float, *, seed: bytes | str = b"") -> bytes:
    """A mono Ogg/Opus stream of ``seconds`` (20 ms frames of 80 bytes: about 4 kB a second)."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, OPUS_PRE_SKIP, OPUS_RATE, 0, 0)
    vendor = b"fake-telegram"
    comment = b"seed=" + (seed.encode() if isinstance(seed, str) else seed)
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<II", 1, len(comment)) + comment
    pages = [ogg_page([head], granule=0, sequence=0, flags=0x02), ogg_page([tags], granule=0, sequence=1)]
    frames = max(1, round(seconds * OPUS_RATE / _FRAME_SAMPLES))
    payload = filler(frames * (_OPUS_FRAME_BYTES - 1), seed or b"opus")
    packets = [b"\xf8" + payload[i * 79 : (i + 1) * 79] for i in range(frames)]  # TOC: CELT fullband 20 ms, mono
    for start in range(0, frames, 50):
        chunk = packets[start : start + 50]
        granule = OPUS_PRE_SKIP + (start + len(chunk)) * _FRAME_SAMPLES
        last = start + 50 >= frames
        pages.append(ogg_page(chunk, granule=granule, sequence=len(pages), flags=0x04 if last else 0))
    return b"".join(pages)


def _ogg_duration(data: bytes) -> float | None:
    """(last granule position - Opus pre-skip) / 48 kHz."""
    last = data.rfind(b"OggS")
    if last < 0 or last + 14 > len(data):
        return None
    granule = struct.unpack_from("<q", data, last + 6)[0]
    head = data.find(b"OpusHead", 0, 200)
    skip = struct.unpack_from("<H", data, head + 10)[0] if head >= 0 and head + 12 <= len(data) else 0
    return max(0.0, (granule - skip) / OPUS_RATE)


# --------------------------------------------------------------------------------------------- MP3, MP4, WAV...


def mp3(seconds: float, *, seed: bytes | str = b"") -> bytes:
    """An ID3v2.3 tag (title = ``seed``) then silent MPEG-1 Layer III frames, 64 kbit/s, 44.1 kHz mono."""
    title = b"\x00" + (seed.encode() if isinstance(seed, str) else seed or b"sample")
    frame = b"TIT2" + struct.pack(">IH", len(title), 0) + title
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    tag = b"ID3\x03\x00\x00" + syncsafe + frame
    frame_length = 144 * 64_000 // _MP3_RATE  # 208 bytes, no padding
    mpeg_frame = b"\xff\xfb\x50\xc0" + bytes(frame_length - 4)
    count = max(1, round(seconds * _MP3_RATE / _MP3_FRAME_SAMPLES))
    return tag + mpeg_frame * count


def _mp3_duration(data: bytes) -> float | None:
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        pos = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
    frames, rate = 0, 0
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] & 0xFE == 0xFA:  # MPEG-1 Layer III
        bitrate_index, rate_index = data[pos + 2] >> 4, (data[pos + 2] >> 2) & 0x03
        if not 0 < bitrate_index < 15 or rate_index == 3:
            break
        rate = _MP3_RATES[rate_index]
        pos += 144 * _MP3_BITRATES[bitrate_index] * 1000 // rate + ((data[pos + 2] >> 1) & 1)
        frames += 1
    return frames * _MP3_FRAME_SAMPLES / rate if frames else None


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(seconds: float, *, seed: bytes | str = b"", bytes_per_second: int = 8_000) -> bytes:
    """An ISO media file: ``ftyp`` (isom), ``moov/mvhd`` with the duration (ms timescale), ``mdat`` filler."""
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = struct.pack(">IIIII", 0, 0, 0, 1000, round(seconds * 1000)) + struct.pack(">IH", 0x10000, 0x100)
    mvhd += bytes(10) + matrix + bytes(24) + struct.pack(">I", 2)
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    media = filler(max(1, round(seconds * bytes_per_second)), seed or b"mp4")
    return ftyp + _box(b"moov", _box(b"mvhd", mvhd)) + _box(b"mdat", media)


def _mp4_duration(data: bytes) -> float | None:
    at = data.find(b"mvhd")
    if at < 0 or at + 24 > len(data):
        return None
    timescale, duration = struct.unpack_from(">II", data, at + 16)
    return duration / timescale if timescale else None


def pcm(seconds: float, *, rate: int = 24_000) -> bytes:
    """Raw 16-bit little-endian mono silence (OpenAI's ``pcm`` speech format: 24 kHz)."""
    return bytes(2 * max(1, round(seconds * rate)))


def wav(seconds: float, *, rate: int = 24_000) -> bytes:
    """A RIFF/WAVE file of 16-bit mono silence."""
    samples = pcm(seconds, rate=rate)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + _chunk(b"fmt ", fmt) + _chunk(b"data", samples)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload


def _wav_duration(data: bytes) -> float | None:
    fmt, body = data.find(b"fmt "), data.find(b"data")
    if fmt < 0 or body < 0 or fmt + 20 > len(data) or body + 8 > len(data):
        return None
    byte_rate = struct.unpack_from("<I", data, fmt + 16)[0]
    size = struct.unpack_from("<I", data, body + 4)[0]
    return size / byte_rate if byte_rate else None


def flac(seconds: float, *, rate: int = 24_000) -> bytes:
    """``fLaC`` and a final ``STREAMINFO`` block (mono, 16 bit) announcing ``seconds`` of samples, no frames."""
    samples = max(1, round(seconds * rate))
    packed = (rate << 44) | (0 << 41) | (15 << 36) | samples  # 20-bit rate, channels-1, bits-1, 36-bit count
    info = struct.pack(">HH", 4096, 4096) + bytes(6) + packed.to_bytes(8, "big") + bytes(16)
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info


def _flac_duration(data: bytes) -> float | None:
    if len(data) < 26:
        return None
    packed = int.from_bytes(data[18:26], "big")
    rate, samples = packed >> 44, packed & ((1 << 36) - 1)
    return samples / rate if rate else None


def aac(seconds: float, *, rate_index: int = 6) -> bytes:
    """ADTS frames (AAC LC, 24 kHz mono by default) with empty payloads; 1024 samples a frame."""
    rate = (96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000)[rate_index]
    payload = bytes(16)
    length = 7 + len(payload)
    header = bytes(
        [0xFF, 0xF1, 0x40 | (rate_index << 2), 0x40 | (length >> 11), (length >> 3) & 0xFF, ((length & 7) << 5) | 0x1F]
    ) + bytes([0xFC])
    return (header + payload) * max(1, round(seconds * rate / 1024))


# --------------------------------------------------------------------------------------------- images and PDF


def jpeg(width: int, height: int, *, seed: bytes | str = b"") -> bytes:
    """A baseline greyscale JPEG of ``width`` x ``height`` (mid-grey), decodable by any JPEG reader.

    Every 8x8 block is "DC difference 0, end of block" coded with one-symbol Huffman tables, so the entropy
    data is two bits a block; ``seed`` goes into a comment segment.
    """
    if not (0 < width < 65536 and 0 < height < 65536):
        raise ValueError("JPEG sides are 1..65535 pixels")
    comment = seed.encode() if isinstance(seed, str) else seed
    parts = [
        b"\xff\xd8",
        _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        _segment(0xFE, comment or b"fake"),
        _segment(0xDB, b"\x00" + bytes([1] * 64)),
        _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"),
        _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00"),
        _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00"),
        _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
    ]
    bits = 2 * ((width + 7) // 8) * ((height + 7) // 8)
    scan = bytearray((bits + 7) // 8)
    if bits % 8:
        scan[-1] = (1 << (8 - bits % 8)) - 1  # pad the last byte with 1-bits
    return b"".join(parts) + bytes(scan) + b"\xff\xd9"


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def pdf(text: str = "Sample document") -> bytes:
    """A one-page PDF 1.4 document that shows ``text`` (ASCII; other characters become ``?``)."""
    safe = text.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    stream = b"BT /F1 18 Tf 72 720 Td (" + safe + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# --------------------------------------------------------------------------------------------- sniffing


def audio_format(data: bytes) -> str | None:
    """``ogg``, ``mp3``, ``wav``, ``flac``, ``mp4`` or ``webm`` from the magic bytes; None otherwise."""
    if data[:4] == b"OggS":
        return "ogg"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and data[1] & 0x06):
        return "mp3"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[4:8] == b"ftyp":
        return "mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    return None


_DURATION_READERS: dict[str, Callable[[bytes], float | None]] = {
    "ogg": _ogg_duration,
    "mp3": _mp3_duration,
    "wav": _wav_duration,
    "flac": _flac_duration,
    "mp4": _mp4_duration,
}


def audio_duration(data: bytes) -> float:
    """Seconds of audio: read from the container where it says (Ogg granule, MP3 frames, WAV/FLAC/MP4
    headers), else estimated as ``len(data) / 4000`` (32 kbit/s)."""
    reader = _DURATION_READERS.get(audio_format(data) or "")
    found = reader(data) if reader is not None else None
    return found if found is not None else len(data) / FALLBACK_BYTES_PER_SECOND


def image_format(data: bytes) -> str | None:
    """``png``, ``jpeg``, ``gif``, ``webp`` or ``bmp`` from the magic bytes; None otherwise."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:6] in {b"GIF87a", b"GIF89a"}:
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, JPEG, WebP or BMP image; None if not an image."""
    for sniff in (_png_size, _gif_size, _jpeg_size, _webp_size, _bmp_size):
        size = sniff(data)
        if size is not None:
            return size
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _gif_size(data: bytes) -> tuple[int, int] | None:
    if data[:6] not in {b"GIF87a", b"GIF89a"} or len(data) < 10:
        return None
    width, height = struct.unpack("<HH", data[6:10])
    return int(width), int(height)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            pos += 1
            continue
        marker = data[pos + 1]
        if marker in {0xD8, 0x01} or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in {0xC4, 0xC8, 0xCC}:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return (1, 1) if len(data) > 2 else None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"BM" or len(data) < 26:
        return None
    width, height = struct.unpack("<ii", data[18:26])
    return abs(int(width)), abs(int(height))
