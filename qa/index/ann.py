"""The FAISS index of a generation's chunk vectors: exact up to FLAT_LIMIT chunks, approximate and
compact above.

Up to FLAT_LIMIT chunks, ``IndexIDMap2`` over a flat float32 index, as always: exact, and a
query reads every vector. Above it, an inverted file of float16 vectors
(``IndexIVFScalarQuantizer``, with a hash table from chunk id to its place so that vectors can be
fetched and removed by id): half the bytes of float32 (cosines move by about 1e-3), and a query
reads only the NPROBE lists nearest to it. IVF rather than HNSW because an update removes the
chunks of edited files by id, which HNSW cannot do. Its lists are trained once, when an index
first passes the limit (and again by `qa index --rebuild`); later updates add to them and remove
from them. benchmarks/scaling.py reports its recall@10 against the exact index.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

# Chunks above which the index is approximate. An exact search reads every vector: 158 ms a query
# at a million (issue 18, one core), so about 16 ms here, against 100-150 ms for the rest of an
# answer; above, it would soon be the largest part.
FLAT_LIMIT = 100_000
# Lists probed per query. Recall@10 against exact search (benchmarks/scaling.py, held-out SQuAD
# questions): .994 on the real index of 2.5k chunks forced approximate (64 lists), .985 at 250k
# and 1.000 at a million synthetic ones (1004 and 2008 lists); 0.5 ms a warm query at 250k.
NPROBE = 24
TRAIN_PER_LIST = 64


def list_count(chunks: int) -> int:
    """Inverted lists for an index of ``chunks`` vectors: about 2 sqrt(n) (632 at 100k, 2000 at
    a million), at most 4096, and at least 39 vectors per list (FAISS's minimum to train on)."""
    return max(1, min(4096, round(2 * math.sqrt(max(chunks, 1))), chunks // 39))


def new_flat(dimension: int):
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def is_approximate(index) -> bool:
    import faiss

    return isinstance(faiss.downcast_index(index), faiss.IndexIVF)


def all_vectors(index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 vectors) of every vector of ``index``."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIDMap2):
        ids = faiss.vector_to_array(inner.id_map).astype(np.int64)
        return ids, faiss.downcast_index(inner.index).reconstruct_n(0, inner.ntotal)
    invlists = inner.invlists
    ids = np.concatenate([faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                          for i in range(inner.nlist)] or [np.zeros(0, np.int64)])
    if not len(ids):
        return ids, np.zeros((0, inner.d), np.float32)
    return ids, np.vstack([inner.reconstruct(int(i)) for i in ids]).astype(np.float32)


def approximate(ids: np.ndarray, vectors: np.ndarray, seed: int = 0):
    """An IVF fp16 index of ``vectors`` under ``ids``, its lists trained on a sample of them."""
    import faiss

    dimension = vectors.shape[1]
    lists = list_count(len(vectors))
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dimension, lists,
                                          faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT, False)
    index.own_fields = True
    quantizer.this.disown()
    index.cp.niter = 10
    index.cp.seed = seed
    index.cp.max_points_per_centroid = TRAIN_PER_LIST
    sample = np.random.default_rng(seed).permutation(len(vectors))[:lists * TRAIN_PER_LIST]
    index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.nprobe = NPROBE
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return index


def updated(previous, dropped_ids, ids: np.ndarray, vectors: np.ndarray, dimension: int,
            source: Path | None = None):
    """The chunk index of a new generation: ``previous`` (None for a first build, else read from
    the file ``source``) without ``dropped_ids``, with ``vectors`` added under ``ids``; exact or
    approximate by its size."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if previous is None:
        if len(ids) > FLAT_LIMIT:
            return approximate(ids, vectors)
        index = new_flat(dimension)
        if len(ids):
            index.add_with_ids(vectors, ids)
        return index
    total = previous.ntotal - len(dropped_ids) + len(ids)
    # Exact until past the limit; approximate until below half of it (no flapping).
    if (total >= FLAT_LIMIT // 2) if is_approximate(previous) else (total <= FLAT_LIMIT):
        # A copy: the previous generation may still be answering questions meanwhile.
        try:
            index = faiss.clone_index(previous)
        except RuntimeError:  # memory-mapped lists cannot be cloned: read them whole
            index = faiss.read_index(str(source))
        if is_approximate(index):
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
        if len(dropped_ids):
            index.remove_ids(np.asarray(dropped_ids, dtype=np.int64))
        if len(ids):
            index.add_with_ids(vectors, ids)
        return index
    old_ids, old_vectors = all_vectors(previous)
    keep = ~np.isin(old_ids, np.asarray(dropped_ids, dtype=np.int64))
    return updated(None, [], np.concatenate([old_ids[keep], ids]),
                   np.vstack([old_vectors[keep], vectors]), dimension)


def search_parameters(index, selector, wanted: int):
    """SearchParameters restricting a search to ``selector``'s ids (``wanted`` of them): an
    approximate index probes every list then, as a small scope's chunks may lie in any of them."""
    import faiss

    if is_approximate(index):
        return faiss.SearchParametersIVF(sel=selector, nprobe=faiss.downcast_index(index).nlist)
    return faiss.SearchParameters(sel=selector)
