"""Back-translation: real Apertium, an OpenAI-compatible server started here, the transformers error path."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from datatrove.data import Document

from r1data.augment.backtranslate import ApertiumBackend, OpenAIBackend, Protector, TransformersBackend, check_round_trip
from r1data.config.spec import build_spec
from r1data.yamlsrc import load_yaml_text
from r1data.errors import ConfigError
from r1data.stages.augment import Backtranslate, BacktranslateConfig
from r1data.stages.base import GENERATED_KEY, rejection

HAVE_APERTIUM = shutil.which("apertium") is not None
needs_apertium = pytest.mark.skipif(not HAVE_APERTIUM, reason="apertium is not installed: run scripts/setup.sh (apt-get install apertium apertium-eng-spa)")


def _stage(**cfg) -> Backtranslate:
    st = Backtranslate(BacktranslateConfig.model_validate(cfg))
    st._ensure_setup()
    return st


def _run(stage, docs):
    return list(stage.run(iter(docs)))


# --------------------------------------------------------------------------------------------
# Apertium (real)


@needs_apertium
def test_apertium_round_trip_batches_many_documents_in_one_call():
    be = ApertiumBackend()
    assert be.check() == []
    texts = [f"The farmer sold {n} apples at the market on Monday." for n in range(3, 43)]
    texts[5] = "First line of a poem.\nSecond line, with [brackets] and <angles> & more."
    out = be.round_trip(texts)
    assert be.calls == 1
    for n, (src, tr) in zip(range(3, 43), zip(texts, out)):
        assert tr.error is None and tr.text
        if "farmer" in src:
            assert f" {n} " in tr.text  # each document came back in its own place
    assert out[0].text != texts[0]
    assert "\n" in out[5].text  # line breaks survive


@needs_apertium
def test_apertium_misaligned_batch_is_split_not_guessed():
    class Dropping(ApertiumBackend):
        """Real apertium, but a multi-document batch loses one separator on the way back."""

        def _pipeline(self, payload):
            out = super()._pipeline(payload)
            if payload.count("[[r1d") > 1:
                i = out.find("[[r1d")
                out = out[:i] + out[out.find("]]", i) + 2 :]
            return out

    be = Dropping()
    texts = ["One cat sleeps.", "Four fish swim."]
    out = be.round_trip(texts)
    assert [t.error for t in out] == [None] * 2
    assert "cat" in out[0].text.lower() and "fish" in out[1].text.lower()
    assert be.calls == 3  # the pair, then each alone


@needs_apertium
def test_backtranslate_stage_protects_gsm8k_annotations():
    st = _stage(backend="apertium", mode="add")
    sol = "She sold 48/2 = <<48/2=24>>24 clips.\n#### 24"
    doc = Document(text="Natalia sold clips to 48 of her friends in April. " + sol, id="q1", metadata={"source": "t", "record_index": 0})
    out = _run(st, [doc])
    assert [d.id for d in out] == ["q1", "q1#aug-backtranslate-1"]
    v = out[1]
    assert rejection(v) is None, v.metadata
    assert "<<48/2=24>>" in v.text and v.text.rstrip().endswith("#### 24")
    assert v.metadata["augmented_from"] == "q1" and v.metadata[GENERATED_KEY] == "backtranslate"
    assert v.metadata["augmentation"]["kind"] == "backtranslation" and v.metadata["record_index"] >= 1 << 62
    assert out[0].metadata["augment"]["backtranslate"]["status"] == "augmented"


@needs_apertium
def test_backtranslate_replace_mode_records_the_original():
    st = _stage(backend="apertium", mode="replace")
    doc = Document(text="The old man walked slowly to the river and looked at the water.", id="p1", metadata={})
    out = _run(st, [doc])
    assert len(out) == 1 and out[0].text != "The old man walked slowly to the river and looked at the water."
    assert out[0].metadata["backtranslated"]["chars"] == 63 and len(out[0].metadata["backtranslated"]["sha1"]) == 40


def test_apertium_missing_is_a_validation_error_naming_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    problems = ApertiumBackend().check()
    assert problems and "apt-get install apertium apertium-eng-spa" in problems[0]
    src = load_yaml_text(
        "name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n  - stage: backtranslate\n", file="r.yaml"
    )
    with pytest.raises(ConfigError) as e:
        build_spec(src)
    assert "r.yaml:6 stages[1].apertium: apertium is not installed" in str(e.value)


def test_round_trip_checks():
    assert check_round_trip("He has 3 cats.", "He has 3 cats.", min_ratio=0.5, max_ratio=2, preserve_numbers=True) == "backtranslation_unchanged"
    assert check_round_trip("He has 3 cats.", "He has three cats.", min_ratio=0.5, max_ratio=2, preserve_numbers=True) == "backtranslation_numbers_changed"
    assert check_round_trip("He has 3 cats.", "3", min_ratio=0.5, max_ratio=2, preserve_numbers=True) == "backtranslation_length_ratio"
    assert check_round_trip("He has 3 cats.", "", min_ratio=0.5, max_ratio=2, preserve_numbers=True) == "backtranslation_empty"
    assert check_round_trip("He has 3 cats.", "He owns 3 cats.", min_ratio=0.5, max_ratio=2, preserve_numbers=True) is None
    p = Protector([r"<<[^<>]*>>"])
    t, spans = p.protect("a <<1+1=2>> b <<2*2=4>>", "n")
    assert "<<" not in t and p.restore(t, spans, "n") == "a <<1+1=2>> b <<2*2=4>>"
    assert p.restore(t.replace("[[r1pnx1]]", ""), spans, "n") is None


# --------------------------------------------------------------------------------------------
# transformers: no weights exist offline, so only the validation path can be tested


def test_transformers_backend_validation_errors(tmp_path):
    be = TransformersBackend(model=str(tmp_path / "missing"), reverse_model=str(tmp_path))
    problems = be.check()
    assert any("checkpoint directory not found" in p for p in problems)
    assert any("has no config.json" in p for p in problems)
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        assert any("needs the Python module transformers" in p for p in problems)
    src = load_yaml_text(
        f"name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n  - stage: backtranslate\n"
        f"    backend: transformers\n    transformers: {{model: {tmp_path}/nope}}\n",
        file="r.yaml",
    )
    with pytest.raises(ConfigError) as e:
        build_spec(src)
    assert "stages[1].transformers: model: checkpoint directory not found" in str(e.value)
    src = load_yaml_text("name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n  - stage: backtranslate\n    backend: openai\n", file="r.yaml")
    with pytest.raises(ConfigError) as e:
        build_spec(src)
    assert "backend openai needs an `openai:` section" in str(e.value)


# --------------------------------------------------------------------------------------------
# an OpenAI-compatible server, started here; the client is the real HTTP code

SYNONYMS = {"bought": "purchased", "big": "large", "quickly": "fast", "house": "home"}


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.requests = 0
        self.fail_first = 0  # answer 500 to the first N requests
        self.slow_first = 0  # sleep past the client's timeout on the first N requests
        self.garbage = False
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        srv: ChatServer = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests += 1
            n = srv.requests
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        if n <= srv.fail_first:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": "overloaded"}')
            return
        if n <= srv.fail_first + srv.slow_first:
            time.sleep(1.5)
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        words = user.split(" ")
        if "to Spanish" in system:  # a deterministic stand-in for a translation: reversed word order
            out = " ".join(reversed(words))
        else:
            out = " ".join(SYNONYMS.get(w.rstrip("."), w.rstrip(".")) + w[len(w.rstrip(".")) :] for w in reversed(words))
        payload = b"not json" if srv.garbage else json.dumps(
            {"id": "x", "object": "chat.completion", "model": body["model"], "choices": [{"index": 0, "message": {"role": "assistant", "content": out}, "finish_reason": "stop"}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server():
    srv = ChatServer()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _docs(n):
    return [Document(text=f"Ann bought a big house number {i} quickly.", id=f"d{i}", metadata={"record_index": i}) for i in range(n)]


def test_openai_backend_round_trip_through_http(server):
    # the server's "translation" swaps four of eight words for synonyms: not a paraphrase the gate would keep
    st = _stage(backend="openai", openai={"url": server.url, "model": "tiny", "concurrency": 4}, gate=None)
    out = _run(st, _docs(6))
    variants = [d for d in out if "augmented_from" in d.metadata]
    assert len(variants) == 6 and server.requests == 12
    assert variants[0].text == "Ann purchased a large home number 0 fast."
    assert all(rejection(v) is None for v in variants)


def test_openai_backend_retries_500_and_timeouts(server):
    server.fail_first, server.slow_first = 2, 1
    be = OpenAIBackend(url=server.url, model="tiny", timeout=0.5, retries=4, backoff=0.01, concurrency=1)
    out = be.round_trip(["Ann bought a big house."])
    assert out[0].error is None and out[0].text == "Ann purchased a large home."
    assert be.retried == 3 and server.requests == 5


def test_endpoint_down_rejects_the_affected_documents_and_the_run_goes_on():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    st = _stage(backend="openai", openai={"url": f"http://127.0.0.1:{port}/v1", "model": "m", "retries": 1, "backoff": 0.01, "breaker": 3, "concurrency": 1})
    out = _run(st, _docs(5))
    originals = [d for d in out if "augmented_from" not in d.metadata]
    variants = [d for d in out if "augmented_from" in d.metadata]
    assert len(originals) == 5 and all(rejection(d) is None for d in originals)
    reasons = [rejection(v)[1] for v in variants]
    assert reasons[:3] == ["backtranslation_endpoint_error"] * 3
    assert reasons[3:] == ["backtranslation_endpoint_unavailable"] * 2  # the breaker stopped calling
    assert "after 2 attempts" in originals[0].metadata["augment"]["backtranslate"]["detail"]
    # replace mode: the documents themselves are rejected
    st = _stage(backend="openai", mode="replace", openai={"url": f"http://127.0.0.1:{port}/v1", "model": "m", "retries": 0, "breaker": 0})
    out = _run(st, _docs(2))
    assert [rejection(d)[1] for d in out] == ["backtranslation_endpoint_error"] * 2


def test_bad_response_is_not_retried(server):
    server.garbage = True
    be = OpenAIBackend(url=server.url, model="tiny", retries=3, backoff=0.01)
    out = be.round_trip(["Hello there."])
    assert out[0].error == "backtranslation_bad_response" and server.requests == 1
