"""Questions are encoded by the network in numpy (qa.minilm); documents by sentence-transformers.
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
    from qa.late_interaction import keep_vocabulary

    real_embedder.load_model()
    tokenizer = real_embedder._model.tokenizer
    vocabulary = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    expected = keep_vocabulary(vocabulary, set(tokenizer.all_special_ids))
    assert real_embedder.vocabulary_size == len(tokenizer)
    assert (real_embedder._keep() == expected).all()


def test_erf_is_accurate():
    import math

    from qa.minilm import _erf

    x = np.linspace(-6, 6, 2001, dtype=np.float32)
    expected = np.array([math.erf(float(v)) for v in x])
    assert np.abs(_erf(x) - expected).max() < 2e-7
