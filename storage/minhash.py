"""MinHash signatures of folded text and their LSH band keys (no database here).

One signature per text: ``num_perm`` MinHash values over character shingles, hashed
with crc32 (stable across processes, unlike Python's ``hash()``) by datasketch's
``affine32`` scheme, and cut into bands x rows as datasketch's optimiser chooses.
A band key is ``"{band}:{16 hex}"``, the blake2b of that band's values: two texts
share a key when a whole band of their signatures is equal.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH
from numpy.typing import NDArray

#: LSH optimiser weights (false positive, false negative). Candidates are verified
#: on their full signature, so a bucket false positive costs one small read while a
#: false negative loses a duplicate: favour recall.
LSH_WEIGHTS = (0.2, 0.8)

_SCHEME = "affine32"


def _crc32(data: bytes) -> int:
    # Stable across processes and machines (Python's hash() is salted per process).
    return zlib.crc32(data)


@functools.lru_cache(maxsize=16)
def lsh_params(threshold: float, num_perm: int,
               weights: tuple[float, float] = LSH_WEIGHTS) -> tuple[int, int]:
    """(bands, rows): the rows that datasketch's optimiser picks for *threshold*, and as
    many bands of them as *num_perm* holds.

    The optimiser leaves permutations unused (31 bands x 3 rows of 128 at 0.4), which
    only costs recall: a pair at the threshold shares a band with probability
    1 - (1 - J**rows)**bands, 0.87 with 31 bands, 0.94 with 42 (0.98 at J = 0.45).
    Candidates are verified on the full signature, so extra bands cost reads, never
    false matches.
    """
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    rows = int(lsh.r)
    return num_perm // rows, rows


@functools.lru_cache(maxsize=16)
def _permutations(num_perm: int) -> NDArray[Any]:
    perms: NDArray[Any] = MinHash(num_perm=num_perm, hashfunc=_crc32,
                                  scheme=_SCHEME).permutations
    return perms


def shingles(text: str, size: int) -> set[bytes]:
    """Character *size*-grams of *text* (the whole text when it is shorter)."""
    if len(text) <= size:
        return {text.encode("utf-8")} if text else set()
    return {text[i:i + size].encode("utf-8") for i in range(len(text) - size + 1)}


def band_keys(values: NDArray[np.uint32], bands: int, rows: int) -> list[str]:
    """The LSH band keys ``"{band}:{16 hex}"`` of MinHash *values*."""
    keys = []
    for band in range(bands):
        chunk = values[band * rows:(band + 1) * rows].astype("<u4").tobytes()
        keys.append(f"{band}:{hashlib.blake2b(chunk, digest_size=8).hexdigest()}")
    return keys


def decode_hashvalues(raw: bytes) -> NDArray[np.uint32]:
    """Stored ``hashvalues`` bytes (little-endian uint32) as an array."""
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)


@dataclass(frozen=True)
class Signature:
    """A MinHash signature and its LSH band keys."""

    hashvalues: NDArray[np.uint32]
    keys: list[str]

    def similarity(self, other: NDArray[np.uint32]) -> float:
        """Estimated Jaccard similarity with another signature of the same length."""
        return float(np.count_nonzero(self.hashvalues == other)) / len(self.hashvalues)


def minhash_signature(text: str, num_perm: int, shingle: int, bands: int,
                      rows: int) -> Signature:
    """MinHash signature of *text* over its *shingle*-character shingles, and band keys."""
    minhash = MinHash(num_perm=num_perm, hashfunc=_crc32, scheme=_SCHEME,
                      permutations=_permutations(num_perm))
    minhash.update_batch(list(shingles(text, shingle)))
    values = np.asarray(minhash.hashvalues, dtype=np.uint32)
    return Signature(values, band_keys(values, bands, rows))
