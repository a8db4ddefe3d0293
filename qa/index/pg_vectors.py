"""Dense search served by a PostgreSQL store's HNSW index (QA_STORE_DENSE=hnsw), instead of a
FAISS flat index of the store's vectors in memory."""

from __future__ import annotations

import threading

import numpy as np

from qa.errors import IndexBusy


class PgVectors:
    """Dense search served by the store's HNSW index: the part of FAISS's interface that
    qa.search.retrieval.dense_ranking uses (ntotal, search, search_among)."""

    # Candidates the HNSW graph walk keeps (pgvector's hnsw.ef_search; its default is 40).
    EF_SEARCH = 100

    def __init__(self, target, generation: int, ntotal: int):
        self.target, self.generation, self.ntotal = target, generation, ntotal
        self._conn = None
        self._ef = 0
        self._lock = threading.Lock()

    def search(self, query: np.ndarray, k: int, params=None):
        return self.search_among(query, k, None)

    def search_among(self, query: np.ndarray, k: int, only):
        """(scores, ids) as FAISS returns them, for one query vector; ``only``: chunk ids."""
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        among = "" if only is None else "AND id = ANY(%(only)s)"
        sql = ("SELECT id, -(embedding <#> %(q)s) FROM qa_chunks "
               "WHERE born <= %(g)s AND (died IS NULL OR died > %(g)s) "
               f"{among} ORDER BY embedding <#> %(q)s LIMIT %(k)s")
        values = {"q": vector, "g": self.generation, "k": int(k),
                  "only": None if only is None else [int(i) for i in only]}
        with self._lock, self.target.reported():
            if self._conn is None or self._conn.closed:
                self._conn, self._ef = self.target.connect(autocommit=True), 0
                self._conn.execute("SET hnsw.iterative_scan = relaxed_order")
            if self._ef < max(self.EF_SEARCH, k):
                self._ef = max(self.EF_SEARCH, int(k))
                self._conn.execute(f"SET hnsw.ef_search = {self._ef}")
            rows = self._conn.execute(sql, values).fetchall()
            if not rows and self.ntotal and not self._conn.execute(
                    "SELECT 1 FROM qa_generations WHERE generation = %s",
                    (self.generation,)).fetchone():
                raise IndexBusy(f"the index in {self.target} was updated since it was loaded, and "
                                "its dense search (QA_STORE_DENSE=hnsw) follows only the live "
                                "generation; open it again")
        rows.sort(key=lambda r: -r[1])  # relaxed order: nearly sorted
        ids = np.full((1, k), -1, dtype=np.int64)
        scores = np.zeros((1, k), dtype=np.float32)
        for i, (chunk_id, score) in enumerate(rows[:k]):
            ids[0, i], scores[0, i] = chunk_id, score
        return scores, ids
