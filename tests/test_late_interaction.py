"""Word vectors (late interaction): projection, quantization, MaxSim, storage and re-ranking."""

from __future__ import annotations

import numpy as np
import pytest

from qa.index import generations
from qa.engine import Engine
from qa.index.late_interaction import (
    PROJECTED_DIMS,
    Projection,
    TokenVectors,
    dequantize,
    idf_weights,
    keep_vocabulary,
    maxsim,
    quantize,
    unit_rows,
)
from qa.search.retrieval import rerank_by_words


def random_rows(count: int, dimension: int = 96, seed: int = 0) -> np.ndarray:
    return unit_rows(np.random.default_rng(seed).standard_normal((count, dimension)))


@pytest.mark.parametrize("count", [0, 3, 500])
def test_projection_is_orthonormal_whatever_the_number_of_rows(count):
    projection = Projection.fit(random_rows(count))
    components = projection.components
    assert components.shape == (PROJECTED_DIMS, 96)
    assert np.allclose(components @ components.T, np.eye(PROJECTED_DIMS), atol=1e-4)
    projected = projection.apply(random_rows(7, seed=1))
    assert projected.shape == (7, PROJECTED_DIMS)
    assert np.allclose(np.linalg.norm(projected, axis=1), 1.0, atol=1e-5)
    again = Projection.from_array(projection.to_array())
    assert np.array_equal(again.to_array(), projection.to_array())


def test_projection_keeps_the_directions_the_data_varies_in():
    rng = np.random.default_rng(2)
    # Data that lives in a 10-dimensional subspace: projected cosines must match the originals.
    basis = np.linalg.qr(rng.standard_normal((96, 10)))[0].T
    data = rng.standard_normal((300, 10)) @ basis
    projection = Projection.fit(data)
    centred = unit_rows(data - projection.mean)
    projected = projection.apply(data)
    assert np.allclose(projected[:20] @ projected[:20].T, centred[:20] @ centred[:20].T, atol=1e-4)


def test_quantized_rows_keep_their_direction():
    rows = random_rows(200, PROJECTED_DIMS, seed=3)
    quantized, scales = quantize(rows)
    assert quantized.dtype == np.int8 and scales.dtype == np.float16
    back = unit_rows(dequantize(quantized, scales))
    assert np.min(np.sum(back * rows, axis=1)) > 0.999
    empty_q, empty_s = quantize(np.zeros((0, PROJECTED_DIMS), np.float32))
    assert empty_q.shape == (0, PROJECTED_DIMS) and empty_s.shape == (0,)


def test_keep_vocabulary_drops_specials_punctuation_and_stop_words():
    vocabulary = ["[PAD]", "[CLS]", "the", "which", ",", "'", "harbour", "##s", "1921", "[unused3]", "##,"]
    keep = keep_vocabulary(vocabulary, special={0, 1})
    kept = [token for token, k in zip(vocabulary, keep) if k]
    assert kept == ["harbour", "##s", "1921"]


def test_maxsim_rewards_a_passage_holding_the_questions_words():
    words = random_rows(6, PROJECTED_DIMS, seed=4)
    query = words[:2]
    weights = np.ones(2)
    holding = np.vstack([words[0], words[1], words[5]])
    missing = words[2:5]
    assert maxsim(query, weights, holding) == pytest.approx(1.0, abs=1e-5)
    assert maxsim(query, weights, missing) < 0.5
    assert maxsim(query, weights, np.zeros((0, PROJECTED_DIMS))) == 0.0
    # A rare word (high idf) matched counts for more than a common one.
    only_first = words[[0, 5]]
    rare_first = maxsim(query, np.array([5.0, 1.0]), only_first)
    rare_second = maxsim(query, np.array([1.0, 5.0]), only_first)
    assert rare_first > rare_second


def test_idf_of_word_pieces_follows_document_frequency():
    doc_freq = np.array([0, 1, 50, 0])
    weights = idf_weights(doc_freq, 100, np.array([1, 2, 3]))
    assert weights[0] > weights[1] and weights[2] > weights[0]


def test_token_vectors_count_each_word_once_per_chunk():
    projection = Projection.fit(random_rows(20))
    vectors, scales = quantize(random_rows(5, PROJECTED_DIMS))
    words = TokenVectors(projection, vectors, scales, np.array([3, 3, 4, 3, 7], np.int32),
                         np.array([3, 0, 2], np.int32), vocabulary_size=10)
    assert words.doc_freq[3] == 2 and words.doc_freq[4] == 1 and words.doc_freq[7] == 1
    assert words.matrix(1).shape == (0, PROJECTED_DIMS)
    assert words.of_chunk(2)[2].tolist() == [3, 7]


def test_question_scores_equal_maxsim_of_each_chunk_empty_ones_too():
    """query_scores reads every asked chunk in one product; each score is still that chunk's own
    maxsim, whatever order or company the chunks are asked in."""
    projection = Projection.fit(random_rows(40))
    vectors, scales = quantize(random_rows(12, PROJECTED_DIMS, seed=1))
    words = TokenVectors(projection, vectors, scales, np.arange(12, dtype=np.int32),
                         np.array([4, 0, 5, 0, 3], np.int32), vocabulary_size=20)
    raw, ids = random_rows(3, 96, seed=2), np.array([1, 5, 9])
    query = projection.apply(raw)
    weights = idf_weights(words.doc_freq, 5, ids)
    for rows in ([0, 1, 2, 3, 4], [4, 2, 0], [1, 3], [2]):
        expected = [maxsim(query, weights, words.matrix(row)) for row in rows]
        assert words.query_scores(raw, ids, rows) == pytest.approx(expected, abs=1e-6)


def test_rerank_by_words_reorders_only_the_scored_head():
    fused = [(10, 1.0), (11, 0.9), (12, 0.8), (13, 0.7)]
    out = rerank_by_words(fused, [0.0, 0.0, 0.3], weight=1.0)
    assert [row for row, _ in out] == [12, 10, 11, 13]
    assert out[0][1] == pytest.approx(1.1)
    assert rerank_by_words(fused, [], weight=1.0) == fused


def test_word_vectors_are_stored_reused_and_refitted_only_on_rebuild(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The ferry leaves the harbour at noon. It returns at six.\n")
    (corpus / "b.txt").write_text("The museum opens on Mondays. Entry is free for children.\n")
    index = tmp_path / "index"
    engine = Engine(corpus, index, fake_embedder)
    engine.sync()
    snap = engine.snapshot
    words = snap.words
    assert words.counts.tolist() == [len(fake_embedder._words(snap.chunk_text(c))[1]) for c in snap.chunks]
    assert words.vectors.dtype == np.int8 and words.vectors.shape[1] == PROJECTED_DIMS
    before = {c.hash: words.of_chunk(r)[0].copy() for r, c in enumerate(snap.chunks)}
    projection = words.projection.to_array()

    (corpus / "c.txt").write_text("The lighthouse was painted red in 1990. Its lamp was replaced.\n")
    engine.sync()
    snap = engine.snapshot
    assert np.array_equal(snap.words.projection.to_array(), projection)  # kept, not refitted
    for row, chunk in enumerate(snap.chunks):
        if chunk.hash in before:
            assert np.array_equal(snap.words.of_chunk(row)[0], before[chunk.hash])
    assert generations.read_manifest(index)["vocabulary"] == fake_embedder.vocabulary_size

    engine.sync(rebuild=True)
    assert not np.array_equal(engine.snapshot.words.projection.to_array(), projection)


def test_questions_words_re_rank_the_head(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The lighthouse keeper rowed to the island every morning.\n")
    (corpus / "b.txt").write_text("Storms closed the island ferry for a week in March.\n")
    engine = Engine(corpus, tmp_path / "index", fake_embedder)
    engine.sync()
    answer = engine.ask("Who rowed to the island?")
    assert answer.citations[0].source == "a.txt"


def test_real_query_vector_equals_plain_encoding_and_drops_stop_words(real_embedder):
    question = "Which company announced it is shutting down its self-driving car effort?"
    vector, words, ids = real_embedder.encode_query(question)
    assert float(vector @ real_embedder.encode([question])[0]) > 0.999
    tokens = [real_embedder._questions.tokenizer.id_to_token(i) for i in ids.tolist()]
    assert "which" not in tokens and "its" not in tokens and "?" not in tokens
    assert {"company", "announced", "driving"} <= set(tokens)
    assert len(words) == len(ids) and np.allclose(np.linalg.norm(words, axis=1), 1.0, atol=1e-4)
