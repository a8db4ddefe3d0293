"""Sentence vectors: pooled from the chunk's one forward pass, stored per generation, reused."""

from __future__ import annotations

import numpy as np
import pytest

from qa.engine import Engine


def test_chunk_vectors_equal_plain_encoding_and_sentences_are_told_apart(real_embedder):
    text = ("The harbour bridge will cost 48 million euros. "
            "The rowing club was founded in 1921 by twelve dock workers.")
    cut = text.index("The rowing")
    spans = [[(0, cut - 1), (cut, len(text))]]
    encoded = real_embedder.encode_chunks([text], spans)
    vectors, sentences = encoded.vectors, encoded.sentences
    plain = real_embedder.encode([text])
    assert float(vectors[0] @ plain[0]) > 0.999
    assert sentences[0].shape == (2, real_embedder.dimension)
    assert np.allclose(np.linalg.norm(sentences[0], axis=1), 1.0, atol=1e-4)
    question = real_embedder.encode(["When was the rowing club founded?"])[0]
    assert sentences[0][1] @ question > sentences[0][0] @ question


def test_sentence_vectors_are_stored_and_reused(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The ferry leaves at noon. It returns at six in the evening.\n")
    (corpus / "b.txt").write_text("The museum opens on Mondays. Entry is free for children.\n")
    engine = Engine(corpus, tmp_path / "index", fake_embedder)
    engine.sync()
    snap = engine.snapshot
    assert len(snap.sentence_vectors) == sum(len(c.sentences) for c in snap.chunks)
    assert snap.sentence_vectors.dtype == np.float16
    before = {c.hash: snap.chunk_sentence_vectors(r).copy() for r, c in enumerate(snap.chunks)}

    (corpus / "c.txt").write_text("The lighthouse was painted red in 1990. Its lamp was replaced.\n")
    engine.sync()
    snap = engine.snapshot
    for row, chunk in enumerate(snap.chunks):
        if chunk.hash in before:
            assert np.array_equal(snap.chunk_sentence_vectors(row), before[chunk.hash])
    assert len(snap.sentence_vectors) == sum(len(c.sentences) for c in snap.chunks)


@pytest.mark.parametrize("question", ["When does the ferry return?"])
def test_answers_use_the_sentence_vectors(tmp_path, fake_embedder, question):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The ferry leaves at noon. The ferry returns at six in the evening.\n")
    engine = Engine(corpus, tmp_path / "index", fake_embedder)
    engine.sync()
    answer = engine.ask(question)
    for citation in answer.citations:
        assert engine.document_text(citation.source)[citation.start:citation.end] == citation.text
