"""The nodes' HTTP clients: request bodies that do not stall the event loop, response bodies read whole.

aiohttp writes a ``bytes`` body in one go (and warns, ``ResourceWarning``, above 1 MiB); a larger body is
handed over as a file-like object, which aiohttp sends in chunks with its ``Content-Length``. A response
body is read to its end, chunk by chunk, up to a bound (``StreamReader.read(n)`` returns only what has
arrived so far)::

    >>> body = await read_limited(resp.content, MAX_BYTES)  # doctest: +SKIP

    >>> request_payload(b"small")
    b'small'
    >>> type(request_payload(bytes(LARGE_BODY_BYTES + 1))).__name__
    'BytesIO'
"""

from __future__ import annotations

import io
from typing import Final

import aiohttp

__all__ = ["LARGE_BODY_BYTES", "READ_CHUNK_BYTES", "read_limited", "request_payload"]

LARGE_BODY_BYTES: Final = 1024 * 1024
"""Bodies above this are streamed in chunks (aiohttp's own ``TOO_LARGE_BYTES_BODY``)."""
READ_CHUNK_BYTES: Final = 64 * 1024


def request_payload(body: bytes) -> bytes | io.BytesIO:
    """``body`` as aiohttp's ``data=``: itself when small, else a ``BytesIO`` sent in chunks."""
    return io.BytesIO(body) if len(body) > LARGE_BODY_BYTES else body


async def read_limited(content: aiohttp.StreamReader, limit: int) -> bytes | None:
    """The whole body of ``content``, or ``None`` as soon as it is larger than ``limit`` bytes."""
    data = bytearray()
    async for chunk in content.iter_chunked(READ_CHUNK_BYTES):
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)
