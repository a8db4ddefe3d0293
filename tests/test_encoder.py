"""The ONNX encoder (qa.index.onnx_encoder): the shipped file is the one its manifest describes, its
vectors are sentence-transformers' within the measured tolerance, and an index whose vectors were
made by another encoder is rebuilt rather than asked with this one's questions."""

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import FakeEmbedder

SENTENCES = [
    "What did Grushko demand?",
    "The ferry to Glimmerfjord sails at noon. Ingrid Solvang captains it.",
    "NATO Secretary General Jens Stoltenberg chaired the meeting of the NATO-Russia Council.",
    "Super Bowl 50 was an American football game to determine the champion of the NFL for the "
    "2015 season.",
    "Héllo wörld — “curly quotes”, 日本語 and an emoji 🤖",
    "How long did the meeting last? " * 60,  # beyond 256 word pieces: truncated alike
    "",
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shipped_encoder_is_the_one_its_manifest_describes():
    from qa.config import model_path
    from qa.index.onnx_encoder import MANIFEST, MODEL_FILE

    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["weights"]["file"] == MODEL_FILE.name
    assert sha256(MODEL_FILE) == manifest["weights"]["sha256"]
    assert MODEL_FILE.stat().st_size == manifest["weights"]["bytes"]
    # Made from the bundled weights (the export reads nothing else).
    assert sha256(Path(model_path()) / "model.safetensors") == manifest["base_weights_sha256"]


@pytest.fixture(scope="module")
def torch_embedder():
    from qa.index.embedder import MiniLMEmbedder

    embedder = MiniLMEmbedder("torch")
    embedder.load_model()
    return embedder


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.model
def test_onnx_vectors_are_sentence_transformers_within_tolerance(real_embedder, torch_embedder):
    """The shipped encoder computes in fp32: its chunk, sentence and word vectors are sentence-transformers' to a cosine above .99999, so an index built by
    either is one family ("fp32") and is not rebuilt when the runtime changes."""
    assert real_embedder.runtime == "onnx" and real_embedder.encoder == "fp32"
    texts = SENTENCES[1:4] + [SENTENCES[5]]
    spans = [[(0, len(t) // 2), (len(t) // 2, len(t))] for t in texts]
    ours = real_embedder.encode_chunks(texts, spans)
    theirs = torch_embedder.encode_chunks(texts, spans)
    assert cosines(ours.vectors, theirs.vectors).min() > 0.99999
    assert cosines(np.concatenate(ours.sentences), np.concatenate(theirs.sentences)).min() > 0.99999
    for (wa, ia), (wb, ib) in zip(ours.words, theirs.words):
        assert ia.tolist() == ib.tolist()
        assert cosines(wa, wb).min() > 0.9999
    assert cosines(real_embedder.encode(SENTENCES), torch_embedder.encode(SENTENCES)).min() > 0.99999
    np.testing.assert_allclose(np.linalg.norm(ours.vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.model
def test_kept_word_pieces_are_the_same_from_the_tokenizer_file(real_embedder, torch_embedder):
    from qa.index.late_interaction import keep_vocabulary

    tokenizer = torch_embedder._model.tokenizer
    vocabulary = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    expected = keep_vocabulary(vocabulary, set(tokenizer.all_special_ids))
    assert real_embedder.vocabulary_size == len(tokenizer)
    assert (real_embedder._keep() == expected).all()


@pytest.mark.model
def test_an_index_of_the_old_encoder_is_answered_as_it_is(seeds_engine, tmp_path):
    """An index written before encoders were recorded (sentence-transformers, fp32) has no
    "encoder" in its manifest: it is the same family, used without rebuilding, same answers."""
    import shutil

    from qa.engine import Engine
    from qa.index import generations

    index = tmp_path / "old-index"
    shutil.copytree(seeds_engine.index_dir, index)
    path = generations.current_path(index) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    assert manifest.pop("encoder") == "fp32"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    old = Engine(seeds_engine.corpus, index, seeds_engine.embedder)
    assert not old.index_outdated()
    question = "Who chaired the NATO-Russia Council meeting?"
    assert old.ask(question).text == seeds_engine.ask(question).text


@pytest.mark.model
def test_a_question_is_encoded_as_a_document_is(real_embedder):
    """The query path (one thread, one text) and the build's (batches by length) agree, so a
    question meets the documents' vectors in the same space."""
    texts = SENTENCES[:5]
    batch = real_embedder.encode(texts)
    for text, row in zip(texts, batch):
        vector, words, ids = real_embedder.encode_query(text)
        np.testing.assert_allclose(vector, row, atol=1e-5)
        assert len(words) == len(ids)
    spans = [[(0, len(t))] for t in texts]
    encoded = real_embedder.encode_chunks(texts, spans)
    np.testing.assert_allclose(encoded.vectors, batch, atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="the export needs the onnx package")
def test_the_export_regenerates_the_shipped_file(tmp_path):
    import subprocess
    import sys

    from qa.index.onnx_encoder import MANIFEST

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, str(root / "training" / "export_encoder.py"), "--out",
                    str(tmp_path)], check=True, capture_output=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    shipped = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert sha256(tmp_path / "encoder.onnx") == shipped["weights"]["sha256"]


class NewEncoder(FakeEmbedder):
    """The same model (name and dimension) run by another encoder."""

    encoder = "onnxruntime 0123456789abcdef"


def test_an_index_of_another_encoder_is_rebuilt(seeds_copy, tmp_path):
    from qa.engine import Engine
    from qa.errors import IndexIncompatible
    from qa.index import generations, store
    from qa.index.indexer import expected_params

    index = tmp_path / "index"
    old = Engine(seeds_copy, index, FakeEmbedder())
    built = old.sync()
    manifest = generations.read_manifest(index)
    assert "encoder" not in manifest  # as every index made before encoders were recorded

    new = Engine(seeds_copy, index, NewEncoder())
    assert new.index_outdated()
    with pytest.raises(IndexIncompatible, match="another encoder"):
        store.load_snapshot(index, expected_params(new.embedder, seeds_copy))
    warnings = []
    report = new.sync(warn=lambda source, reason: warnings.append(reason))
    assert any("another encoder" in w and "rebuilding" in w for w in warnings)
    assert report.chunks_embedded == report.chunks == built.chunks
    assert generations.read_manifest(index)["encoder"] == NewEncoder.encoder
    assert not new.index_outdated()
    answer = new.ask("Who chaired the NATO-Russia Council meeting?")
    assert answer.passages

    # And back: the old encoder finds the new index outdated in turn.
    assert Engine(seeds_copy, index, FakeEmbedder()).index_outdated()


def test_qa_ask_rebuilds_an_index_of_another_encoder(seeds_copy, tmp_path, monkeypatch, capsys):
    import qa.engine
    from qa.cli import main

    index = tmp_path / "index"
    monkeypatch.setattr(qa.engine, "MiniLMEmbedder", FakeEmbedder)
    assert main(["--corpus", str(seeds_copy), "--index", str(index), "index"]) == 0
    monkeypatch.setattr(qa.engine, "MiniLMEmbedder", NewEncoder)
    capsys.readouterr()
    assert main(["--corpus", str(seeds_copy), "--index", str(index), "ask",
                 "Who chaired the NATO-Russia Council meeting?", "--json"]) == 0
    out = capsys.readouterr()
    assert "another encoder" in out.err
    assert json.loads(out.out)["question"]


@pytest.mark.model
def test_building_and_answering_import_no_torch(seeds_copy, tmp_path):
    """The ONNX encoder embeds documents and questions: torch is not needed at run time."""
    from test_import_hygiene import HEAVY, imported_after

    modules = imported_after(
        "from qa.engine import Engine\n"
        f"engine = Engine({str(seeds_copy)!r}, {str(tmp_path / 'index')!r})\n"
        "assert engine.sync().chunks_embedded > 0\n"
        "assert engine.ask('Who chaired the NATO-Russia Council meeting?').found")
    assert not modules & {"torch", "sentence_transformers", "transformers"}, modules & set(HEAVY)


@pytest.mark.model
def test_a_question_is_encoded_while_the_model_for_documents_loads(monkeypatch):
    """With the torch runtime, an update that has to import torch (seconds, or half a minute on a
    busy machine) does not hold up the questions the app and the server answer meanwhile."""
    import sys
    import threading
    import types

    from qa.index.embedder import MiniLMEmbedder

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
    embedder = MiniLMEmbedder("torch")
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
