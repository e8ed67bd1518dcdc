"""The CPU-heavy half of examples/cluster.py: make documents, and parse them on Dask workers.

A module of its own, so that Dask's worker processes import it by name, however the script
itself is run. On a real cluster, ship it first: ``await client.upload_file(__file__)``.

Every 29th document (n % 29 == 13) is corrupt: parsing it raises `ParseError`, in the
worker process, on every attempt.
"""

from __future__ import annotations

import hashlib
import os
import random
import zlib
from collections import Counter
from typing import Final

SIGNATURE_SIZE: Final = 24
"""MinHash functions per document: the main CPU cost of `parse` (~0.2 s a document)."""

_SYLLABLES: Final = ("ka", "lo", "mi", "ne", "su", "ta", "vo", "ri", "pe", "do", "an", "el")
VOCABULARY: Final = tuple(
    "".join(random.Random(n).choices(_SYLLABLES, k=1 + n % 4)) + str(n % 7) for n in range(3_000)
)


class ParseError(ValueError):
    """The document is malformed: retrying will not help."""


def make_document(number: int) -> str:
    """The text of document `number`: a header line, then 15,000-30,000 words."""
    rng = random.Random(number)
    words = rng.choices(VOCABULARY, k=rng.randint(15_000, 30_000))
    header = "%%corrupt" if number % 29 == 13 else f"%%doc {number}"
    return header + "\n" + " ".join(words)


def parse(document: dict[str, object]) -> dict[str, object]:
    """Parse, fingerprint and compress one document: pure-Python CPU work.

    Tokenises the text, counts words, computes a MinHash signature of its 3-word shingles
    (for near-duplicate detection), compresses it and hashes it.

    Raises:
        ParseError: the document's header is malformed.
    """
    text = str(document["text"])
    header, _, body = text.partition("\n")
    if not header.startswith("%%doc "):
        raise ParseError(f"document {document['number']} has a malformed header {header!r}")
    words = body.split()
    shingles = {" ".join(words[i : i + 3]).encode() for i in range(len(words) - 2)}
    signature = [
        min(zlib.crc32(shingle, seed) for shingle in shingles) for seed in range(SIGNATURE_SIZE)
    ]
    raw = body.encode()
    packed = zlib.compress(raw, 9)
    return {
        "number": document["number"],
        "words": len(words),
        "top": [word for word, _ in Counter(words).most_common(3)],
        "minhash": signature[:4],
        "ratio": round(len(packed) / len(raw), 3),
        "sha256": hashlib.sha256(raw).hexdigest()[:16],
        "pid": os.getpid(),
    }
