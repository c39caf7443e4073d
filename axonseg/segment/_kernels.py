"""numba building blocks for graph agglomeration: union-find, a binary min-heap and an
open-addressing hash map from node pairs to edge ids (all on plain numpy arrays).
"""

from __future__ import annotations

import numba
import numpy as np

EMPTY = -1
TOMBSTONE = -2


@numba.njit(cache=True, nogil=True)
def find(parent: np.ndarray, node: int) -> int:
    """Root of node, halving the path on the way (keeps trees flat)."""
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


@numba.njit(cache=True, nogil=True)
def heap_push(keys: np.ndarray, values: np.ndarray, size: int, key: float, value: int) -> int:
    """Push (key, value) onto the min-heap of the first `size` entries; returns the new size."""
    i = size
    keys[i] = key
    values[i] = value
    while i > 0:
        up = (i - 1) >> 1
        if keys[up] <= keys[i]:
            break
        keys[up], keys[i] = keys[i], keys[up]
        values[up], values[i] = values[i], values[up]
        i = up
    return size + 1


@numba.njit(cache=True, nogil=True)
def _sift_down(keys: np.ndarray, values: np.ndarray, size: int, i: int) -> None:
    while True:
        left = 2 * i + 1
        if left >= size:
            return
        smallest = left
        right = left + 1
        if right < size and keys[right] < keys[left]:
            smallest = right
        if keys[i] <= keys[smallest]:
            return
        keys[smallest], keys[i] = keys[i], keys[smallest]
        values[smallest], values[i] = values[i], values[smallest]
        i = smallest


@numba.njit(cache=True, nogil=True)
def heapify(keys: np.ndarray, values: np.ndarray, size: int) -> None:
    """Turn the first `size` entries into a min-heap in O(size)."""
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(keys, values, size, i)


@numba.njit(cache=True, nogil=True)
def heap_pop(keys: np.ndarray, values: np.ndarray, size: int) -> int:
    """Remove the minimum (read keys[0], values[0] before); returns the new size."""
    size -= 1
    keys[0] = keys[size]
    values[0] = values[size]
    _sift_down(keys, values, size, 0)
    return size


@numba.njit(cache=True, nogil=True)
def pair_key(a: int, b: int, n_nodes: int) -> int:
    """One int64 key for the unordered node pair (a, b)."""
    if a > b:
        a, b = b, a
    return a * n_nodes + b


@numba.njit(cache=True, nogil=True)
def _slot(key: int, mask: int) -> int:
    # Fibonacci hashing spreads the structured pair keys over the table
    h = np.uint64(key) * np.uint64(11400714819323198485)
    return int(h >> np.uint64(20)) & mask


@numba.njit(cache=True, nogil=True)
def hash_find(table_keys: np.ndarray, table_values: np.ndarray, key: int) -> int:
    """Value stored for key, or -1."""
    mask = len(table_keys) - 1
    i = _slot(key, mask)
    while True:
        k = table_keys[i]
        if k == key:
            return table_values[i]
        if k == EMPTY:
            return -1
        i = (i + 1) & mask


@numba.njit(cache=True, nogil=True)
def hash_delete(table_keys: np.ndarray, key: int) -> bool:
    """Remove key (leaves a tombstone); returns whether it was there."""
    mask = len(table_keys) - 1
    i = _slot(key, mask)
    while True:
        k = table_keys[i]
        if k == key:
            table_keys[i] = TOMBSTONE
            return True
        if k == EMPTY:
            return False
        i = (i + 1) & mask


@numba.njit(cache=True, nogil=True)
def hash_insert(table_keys: np.ndarray, table_values: np.ndarray, key: int, value: int) -> bool:
    """Insert a key known to be absent; returns True if it used a fresh (EMPTY) slot."""
    mask = len(table_keys) - 1
    i = _slot(key, mask)
    while True:
        k = table_keys[i]
        if k == EMPTY or k == TOMBSTONE:
            table_keys[i] = key
            table_values[i] = value
            return k == EMPTY
        i = (i + 1) & mask


@numba.njit(cache=True, nogil=True)
def hash_rebuild(table_keys: np.ndarray, table_values: np.ndarray):
    """A fresh table of the same capacity with the live entries only (drops tombstones)."""
    new_keys = np.full(len(table_keys), EMPTY, dtype=np.int64)
    new_values = np.empty(len(table_keys), dtype=np.int64)
    used = 0
    for i in range(len(table_keys)):
        if table_keys[i] >= 0:
            hash_insert(new_keys, new_values, table_keys[i], table_values[i])
            used += 1
    return new_keys, new_values, used


def table_capacity(n_entries: int) -> int:
    """Power of two with room for n_entries at a load of at most 1/2."""
    return 1 << max(4, int(2 * max(n_entries, 1) - 1).bit_length())
