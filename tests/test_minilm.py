"""Questions are encoded by the network in numpy (qa.index.minilm); documents by sentence-transformers.
Both must give the same vectors, or dense search would compare two different models."""

import numpy as np
import pytest

TEXTS = [
    "What did Grushko demand?",
    "",
    "?",
    "Héllo wörld — “curly quotes”, 日本語 and an emoji 🤖",
    "How long did the meeting last? " * 60,  # beyond 256 word pieces: truncated alike
    "The UK’s first ever space mission failed after the Virgin Orbit rocket launched from where?",
]


@pytest.mark.model
@pytest.mark.parametrize("text", TEXTS)
def test_numpy_network_matches_sentence_transformers(real_embedder, text):
    real_embedder.load_model()  # so that _forward is sentence-transformers' pass
    ours, ids = real_embedder._questions.forward(text)
    theirs, their_ids, _ = next(real_embedder._forward([text]))
    assert ids.tolist() == their_ids.tolist()
    assert np.abs(ours - theirs).max() < 1e-4
    vector, words, word_ids = real_embedder.encode_query(text)
    np.testing.assert_allclose(vector, real_embedder.encode([text])[0], atol=1e-5)
    expected_words, expected_ids = real_embedder._words(theirs, their_ids)
    assert word_ids.tolist() == expected_ids.tolist()
    np.testing.assert_allclose(words, expected_words, atol=1e-4)


@pytest.mark.model
def test_kept_word_pieces_are_the_same_from_the_tokenizer_file(real_embedder):
    from qa.index.late_interaction import keep_vocabulary

    real_embedder.load_model()
    tokenizer = real_embedder._model.tokenizer
    vocabulary = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    expected = keep_vocabulary(vocabulary, set(tokenizer.all_special_ids))
    assert real_embedder.vocabulary_size == len(tokenizer)
    assert (real_embedder._keep() == expected).all()


@pytest.mark.model
def test_a_few_chunks_are_embedded_alike_without_loading_sentence_transformers(real_embedder):
    from qa.index.embedder import SentenceTransformerEmbedder

    texts = ["The ferry to Glimmerfjord sails at noon. Ingrid Solvang captains it.",
             "Grushko said the talks were useful. “We will see,” he added."]
    spans = [[(0, 40), (41, len(texts[0]))], [(0, 35), (36, len(texts[1]))]]
    fresh = SentenceTransformerEmbedder()
    assert not fresh.needs_model(texts)
    ours = fresh.encode_chunks(texts, spans)
    assert not fresh.model_loaded  # embedded by the numpy network
    real_embedder.load_model()
    theirs = real_embedder.encode_chunks(texts, spans)
    np.testing.assert_allclose(ours.vectors, theirs.vectors, atol=1e-5)
    for a, b in zip(ours.sentences, theirs.sentences):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for (wa, ia), (wb, ib) in zip(ours.words, theirs.words):
        assert ia.tolist() == ib.tolist()
        np.testing.assert_allclose(wa, wb, atol=1e-4)
    np.testing.assert_allclose(ours.all_tokens, theirs.all_tokens, atol=1e-4)
    assert fresh.needs_model(["word " * 300] * 20)  # a large job loads the real thing


def test_erf_is_accurate():
    import math

    from qa.index.minilm import _erf

    x = np.linspace(-6, 6, 2001, dtype=np.float32)
    expected = np.array([math.erf(float(v)) for v in x])
    assert np.abs(_erf(x) - expected).max() < 2e-7


@pytest.mark.model
def test_a_question_is_encoded_while_the_model_for_documents_loads(monkeypatch):
    """An update that has to import torch (seconds, or half a minute on a busy machine) does not
    hold up the questions the app and the server answer meanwhile."""
    import sys
    import threading
    import types

    from qa.index.embedder import SentenceTransformerEmbedder

    loading, release = threading.Event(), threading.Event()

    def slow_model(*args, **kwargs):
        loading.set()
        assert release.wait(30)
        return object()

    monkeypatch.setitem(sys.modules, "sentence_transformers",
                        types.SimpleNamespace(SentenceTransformer=slow_model))
    logging = types.SimpleNamespace(disable_progress_bar=lambda: None)
    monkeypatch.setitem(sys.modules, "transformers", types.ModuleType("transformers"))
    monkeypatch.setitem(sys.modules, "transformers.utils", types.SimpleNamespace(logging=logging))
    embedder = SentenceTransformerEmbedder()
    loader = threading.Thread(target=embedder.load_model, daemon=True)
    loader.start()
    try:
        assert loading.wait(30)
        encoded = []
        asking = threading.Thread(target=lambda: encoded.append(embedder.encode_query("Who?")),
                                  daemon=True)
        asking.start()
        asking.join(30)
        assert encoded and encoded[0][0].shape == (embedder.dimension,)
        assert loader.is_alive()  # the model was still loading
    finally:
        release.set()
        loader.join(30)
