"""Writing a .npy file whose rows are mostly another .npy file's: an update's word and sentence
vectors are the previous generation's, a few rows changed. The kept runs are copied file to file
by the kernel (copy_file_range), the rest written from memory, giving the bytes np.save gives.

Measured on the 210 MB word vectors of a 50k-chunk index, in a fresh process (ext4): np.save of
the array 0.04-0.58 s (0.5 s when its pages are new to the process, as in every `qa index`),
copy_file_range 0.07 s, every time. The previous generation is only read: it stays as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from qa.index.chunk_plan import PlannedWords
from qa.index.records import NPY_LOCK, WORD_FILES, word_arrays

# (first row, end row, first row in the source file): rows of the array equal to the source's.
Copied = list[tuple[int, int, int]]


def save_vectors(folder: Path, sentence_vectors: np.ndarray, words, copies: dict) -> list[Path]:
    """Write a generation's sentence and word vectors into ``folder`` (``copies``: {file name:
    (the previous generation's file, runs of rows)}; an update's PlannedWords copy their kept
    runs from the previous files). Returns the files written."""
    save_array(folder / "sentences.npy", np.asarray(sentence_vectors, dtype=np.float16),
               *copies.get("sentences.npy", ()))
    if isinstance(words, PlannedWords):
        for part, name in enumerate(WORD_FILES[:3]):
            save_pieces(folder / name, words.pieces(part),
                        (words.old.vectors, words.old.scales, words.old.ids)[part],
                        words.source / name if words.source is not None else None)
        np.save(folder / WORD_FILES[3], words.counts, allow_pickle=False)
        np.save(folder / WORD_FILES[4], words.projection.to_array(), allow_pickle=False)
    else:
        for name, array in word_arrays(words).items():
            save_array(folder / name, array)
    return [folder / "sentences.npy", *(folder / name for name in WORD_FILES)]


def save_array(path: Path, array: np.ndarray, source: Path | None = None,
               copied: Copied = ()) -> None:
    """np.save(path, array), taking the ``copied`` runs of rows from the .npy file ``source``
    (which holds them, as the caller knows) rather than from memory. Falls back to np.save when
    the source is missing or not laid out as ``array``."""
    array = np.ascontiguousarray(array)
    offset = _data_offset(source, array) if source is not None and copied else None
    if offset is None:
        np.save(path, array, allow_pickle=False)
        return
    row = array.strides[0] if array.ndim and len(array) else 0
    with open(source, "rb", buffering=0) as src, open(path, "wb", buffering=0) as dst:
        np.lib.format.write_array_header_1_0(dst, np.lib.format.header_data_from_array_1_0(array))
        at = 0
        for first, end, from_row in sorted(copied):
            _write_all(dst.fileno(), array[at:first])
            _copy(src.fileno(), dst.fileno(), (end - first) * row, offset + from_row * row)
            at = end
        _write_all(dst.fileno(), array[at:])


def save_pieces(path: Path, pieces: list, old: np.ndarray, source: Path | None) -> None:
    """Save the rows of ``pieces`` one after the other: arrays, or (first, end) rows of ``old``,
    the array held by the .npy file ``source``, copied file to file (or from ``old`` when that
    file is missing or laid out otherwise)."""
    dtype = old.dtype
    rows = sum(p[1] - p[0] if isinstance(p, tuple) else len(p) for p in pieces)
    shaped = np.zeros((0, *old.shape[1:]), dtype)
    offset = _data_offset(source, shaped) if source is not None else None
    if offset is None:
        parts = [old[p[0]:p[1]] if isinstance(p, tuple) else p for p in pieces]
        np.save(path, np.concatenate(parts).astype(dtype, copy=False) if parts else shaped,
                allow_pickle=False)
        return
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": (rows, *old.shape[1:])}
    row = shaped.itemsize * int(np.prod(old.shape[1:], dtype=np.int64))
    with open(source, "rb", buffering=0) as src, open(path, "wb", buffering=0) as dst:
        np.lib.format.write_array_header_1_0(dst, header)
        for piece in pieces:
            if isinstance(piece, tuple):
                _copy(src.fileno(), dst.fileno(), (piece[1] - piece[0]) * row, offset + piece[0] * row)
            else:
                _write_all(dst.fileno(), np.asarray(piece, dtype))


def _data_offset(source: Path, array: np.ndarray) -> int | None:
    """Where the data of the .npy file ``source`` starts, when its rows are laid out as
    ``array``'s (same dtype, same row shape, C order); else None."""
    try:
        with NPY_LOCK, open(source, "rb") as handle:  # the header is parsed by literal_eval
            version = np.lib.format.read_magic(handle)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(handle)
            offset = handle.tell()
    except (OSError, ValueError):
        return None
    if fortran or dtype != array.dtype or tuple(shape[1:]) != array.shape[1:] or not shape:
        return None
    return offset


def _write_all(fd: int, rows: np.ndarray) -> None:
    if not rows.size:
        return
    data = memoryview(np.ascontiguousarray(rows)).cast("B")
    while len(data):
        data = data[os.write(fd, data):]


def _copy(src: int, dst: int, count: int, offset: int) -> None:
    """``count`` bytes of ``src`` from ``offset`` appended to ``dst``, in the kernel where it can."""
    while count > 0:
        try:
            done = os.copy_file_range(src, dst, count, offset)
        except (AttributeError, OSError):  # no such call here, or not between these files
            done = _copy_plainly(src, dst, min(count, 1 << 24), offset)
        if done <= 0:
            raise OSError(f"the previous generation's file ended {count} bytes early")
        count, offset = count - done, offset + done


def _copy_plainly(src: int, dst: int, count: int, offset: int) -> int:
    data = os.pread(src, count, offset)
    view = memoryview(data)
    while len(view):
        view = view[os.write(dst, view):]
    return len(data)
