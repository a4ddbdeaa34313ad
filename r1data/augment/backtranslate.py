"""Back-translation (text -> pivot language -> text) through pluggable backends.

    backend = make_backend("apertium", {"pair": "eng-spa", "reverse": "spa-eng"})
    problems = backend.check()            # validation-time: [] or ["apertium is not installed: ..."]
    backend.setup()                       # worker-time: load models, open sessions
    results = backend.round_trip(texts)   # [Translation(text=..., error=None), ...] in order

Backends:

- ``apertium`` (default): the rule-based Apertium engine as a program (GPL: never linked). Many
  documents go through one ``apertium -u eng-spa | apertium -u spa-eng`` pipeline, joined by a
  separator line that Apertium passes through untouched; a batch whose separators do not come
  back intact is split in halves and retried, so documents can never be misaligned.
- ``transformers``: local MarianMT / NLLB / M2M checkpoint directories (forward and reverse),
  loaded with ``local_files_only``; ``transformers`` and ``torch`` are imported only here.
- ``openai``: any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, TGI, llama.cpp
  server, ...): concurrent requests, a timeout per request, retries with exponential backoff on
  timeouts, connection errors, 429 and 5xx, and a circuit breaker that stops calling an endpoint
  that keeps failing. A document whose requests all failed gets an error, never an exception.

Spans matching ``protect`` patterns (GSM8K annotations, ``#### answer`` lines, LaTeX) are swapped
for placeholders before translation and restored after; a lost placeholder is an error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass
class Translation:
    text: str | None
    error: str | None = None  # a drop reason (backtranslation_endpoint_error, ...)
    detail: str = ""


# --------------------------------------------------------------------------------------------
# protected spans


class Protector:
    """Swap spans matching ``patterns`` for placeholders that survive translation, and back."""

    def __init__(self, patterns: list[str]):
        self.patterns = [re.compile(p, re.M) for p in patterns]

    def protect(self, text: str, nonce: str) -> tuple[str, list[str]]:
        spans: list[str] = []
        if not self.patterns:
            return text, spans

        def sub(m: re.Match) -> str:
            spans.append(m.group(0))
            return f"[[r1p{nonce}x{len(spans) - 1}]]"

        for p in self.patterns:
            text = p.sub(sub, text)
        return text, spans

    def restore(self, text: str, spans: list[str], nonce: str) -> str | None:
        """The text with its spans back; None when a placeholder was lost or duplicated."""
        for i, span in enumerate(spans):
            token = f"[[r1p{nonce}x{i}]]"
            if text.count(token) != 1:
                return None
            text = text.replace(token, span)
        return text


def _nonce(texts: list[str]) -> str:
    """A short tag derived from the batch, absent from its texts (deterministic, no collisions)."""
    h = hashlib.blake2b("\0".join(texts).encode("utf-8", "replace"), digest_size=4).hexdigest()
    while any(h in t for t in texts):
        h = hashlib.blake2b(h.encode(), digest_size=4).hexdigest()
    return h


_SPACES = re.compile(r"[ \t]{2,}")


def tidy(text: str) -> str:
    """Collapse the double spaces a dropped word leaves and trim line ends."""
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n")).strip()


# --------------------------------------------------------------------------------------------
# backends


class Backend:
    name = "backend"

    def check(self) -> list[str]:
        """Problems found without doing any work (missing program, model, package)."""
        return []

    def setup(self) -> None:
        pass

    def round_trip(self, texts: list[str]) -> list[Translation]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}


class ApertiumBackend(Backend):
    """``apertium -u PAIR | apertium -u REVERSE``, many documents per pipeline."""

    name = "apertium"

    def __init__(self, pair: str = "eng-spa", reverse: str = "spa-eng", batch_chars: int = 200_000, timeout: float = 600.0):
        self.pair, self.reverse = pair, reverse
        self.batch_chars, self.timeout = batch_chars, timeout
        self.calls = 0

    def check(self) -> list[str]:
        exe = shutil.which("apertium")
        if exe is None:
            return [f"apertium is not installed: apt-get install apertium apertium-{_package(self.pair)} (or run scripts/setup.sh)"]
        try:
            modes = subprocess.run([exe, "-l"], capture_output=True, text=True, timeout=30).stdout.split()
        except (OSError, subprocess.SubprocessError) as e:
            return [f"apertium -l failed: {e}"]
        missing = [m for m in (self.pair, self.reverse) if m not in modes]
        if missing:
            return [
                f"apertium has no mode {', '.join(missing)} (installed: {', '.join(modes) or 'none'}); "
                f"apt-get install apertium-{_package(self.pair)}"
            ]
        return []

    def describe(self) -> dict[str, Any]:
        version = None
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", f"apertium-{_package(self.pair)}"], capture_output=True, text=True, timeout=10)
            version = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
        return {"backend": "apertium", "pair": self.pair, "reverse": self.reverse, "package_version": version}

    def round_trip(self, texts: list[str]) -> list[Translation]:
        out: list[Translation] = [Translation(None)] * len(texts)
        batch: list[int] = []
        size = 0
        for i, t in enumerate(texts):
            if batch and size + len(t) > self.batch_chars:
                self._run_batch(texts, batch, out)
                batch, size = [], 0
            batch.append(i)
            size += len(t)
        if batch:
            self._run_batch(texts, batch, out)
        return out

    def _run_batch(self, texts: list[str], idx: list[int], out: list[Translation]) -> None:
        chunk = [texts[i].replace("\0", "") for i in idx]
        nonce = _nonce(chunk)
        sep = f"[[r1d{nonce}s{{}}]]"
        payload = "".join(f"{t}\n\n{sep.format(k)}\n\n" for k, t in enumerate(chunk))
        try:
            result = self._pipeline(payload)
        except (OSError, subprocess.SubprocessError, RuntimeError) as e:
            for i in idx:
                out[i] = Translation(None, "backtranslation_backend_error", " ".join(str(e).split())[:300])
            return
        parts = re.split(rf"\s*\[\[r1d{nonce}s(\d+)\]\]\s*", result)
        order = parts[1::2]
        if order == [str(k) for k in range(len(chunk))] and not parts[-1].strip():
            for i, text in zip(idx, parts[0::2]):
                out[i] = Translation(tidy(text))
            return
        if len(idx) == 1:  # a lone document that loses its separator: report it, do not guess
            out[idx[0]] = Translation(None, "backtranslation_misaligned", "separator did not survive translation")
            return
        half = len(idx) // 2
        self._run_batch(texts, idx[:half], out)
        self._run_batch(texts, idx[half:], out)

    def _pipeline(self, payload: str) -> str:
        self.calls += 1
        exe = shutil.which("apertium") or "apertium"
        fwd = subprocess.Popen([exe, "-u", self.pair], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        bwd = subprocess.Popen([exe, "-u", self.reverse], stdin=fwd.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        fwd.stdout.close()  # bwd owns it now; fwd gets SIGPIPE if bwd dies

        def feed():
            try:
                fwd.stdin.write(payload.encode("utf-8"))
            except BrokenPipeError:
                pass
            finally:
                fwd.stdin.close()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            stdout, stderr = bwd.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            fwd.kill()
            bwd.kill()
            raise RuntimeError(f"apertium took longer than {self.timeout:g} s") from None
        writer.join()
        fwd_err = fwd.stderr.read().decode("utf-8", "replace")
        fwd.wait()
        if fwd.returncode or bwd.returncode:
            raise RuntimeError(f"apertium exited {fwd.returncode}/{bwd.returncode}: {(fwd_err + stderr.decode('utf-8', 'replace')).strip()[:300]}")
        return stdout.decode("utf-8", "replace")


def _package(pair: str) -> str:
    a, _, b = pair.partition("-")
    return f"{a}-{b.split('_')[0]}" if b else pair


class TransformersBackend(Backend):
    """Local seq2seq checkpoints (MarianMT pairs, or one NLLB/M2M model with language codes)."""

    name = "transformers"

    def __init__(
        self,
        model: str,
        reverse_model: str | None = None,
        source_lang: str | None = None,
        pivot_lang: str | None = None,
        device: str = "cpu",
        batch_size: int = 16,
        max_new_tokens: int = 512,
    ):
        self.model, self.reverse_model = model, reverse_model or model
        self.source_lang, self.pivot_lang = source_lang, pivot_lang
        self.device, self.batch_size, self.max_new_tokens = device, batch_size, max_new_tokens

    def check(self) -> list[str]:
        problems = []
        for key, path in (("model", self.model), ("reverse_model", self.reverse_model)):
            if not os.path.isdir(path):
                problems.append(f"{key}: checkpoint directory not found: {path} (a local MarianMT/NLLB directory with config.json)")
            elif not os.path.isfile(os.path.join(path, "config.json")):
                problems.append(f"{key}: {path} has no config.json; is it a transformers checkpoint directory?")
        for module in ("transformers", "torch"):
            if importlib.util.find_spec(module) is None:
                problems.append(f"the transformers backend needs the Python module {module}: pip install 'r1data[backtranslate-hf]'")
        if (self.model == self.reverse_model) and not (self.source_lang and self.pivot_lang):
            problems.append("one multilingual model (NLLB/M2M) needs source_lang and pivot_lang, e.g. eng_Latn and spa_Latn")
        return problems

    def setup(self) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self._tok_f = AutoTokenizer.from_pretrained(self.model, local_files_only=True)
        self._mod_f = AutoModelForSeq2SeqLM.from_pretrained(self.model, local_files_only=True).to(self.device).eval()
        if self.reverse_model == self.model:
            self._tok_b, self._mod_b = self._tok_f, self._mod_f
        else:
            self._tok_b = AutoTokenizer.from_pretrained(self.reverse_model, local_files_only=True)
            self._mod_b = AutoModelForSeq2SeqLM.from_pretrained(self.reverse_model, local_files_only=True).to(self.device).eval()

    def _translate(self, tok, model, texts: list[str], src: str | None, tgt: str | None) -> list[str]:
        import torch

        out: list[str] = []
        for k in range(0, len(texts), self.batch_size):
            chunk = texts[k : k + self.batch_size]
            if src and hasattr(tok, "src_lang"):
                tok.src_lang = src
            enc = tok(chunk, return_tensors="pt", padding=True, truncation=True).to(self.device)
            kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens}
            if tgt:
                kwargs["forced_bos_token_id"] = tok.convert_tokens_to_ids(tgt)
            with torch.no_grad():
                gen = model.generate(**enc, **kwargs)
            out.extend(tok.batch_decode(gen, skip_special_tokens=True))
        return out

    def round_trip(self, texts: list[str]) -> list[Translation]:
        try:
            pivot = self._translate(self._tok_f, self._mod_f, texts, self.source_lang, self.pivot_lang)
            back = self._translate(self._tok_b, self._mod_b, pivot, self.pivot_lang, self.source_lang)
        except Exception as e:  # a model that cannot run a batch must not take the task down
            return [Translation(None, "backtranslation_backend_error", f"{type(e).__name__}: {e}"[:300]) for _ in texts]
        return [Translation(tidy(t)) for t in back]

    def describe(self) -> dict[str, Any]:
        return {"backend": "transformers", "model": self.model, "reverse_model": self.reverse_model, "source_lang": self.source_lang, "pivot_lang": self.pivot_lang}


class EndpointError(Exception):
    def __init__(self, reason: str, detail: str, retry: bool):
        self.reason, self.detail, self.retry = reason, detail, retry
        super().__init__(detail)


class OpenAIBackend(Backend):
    """Two chat completions per document (to the pivot language and back) on an OpenAI-compatible server."""

    name = "openai"
    SYSTEM = "You are a translation engine. Translate the user's text from {src} to {tgt}. Reply with the translation only. Keep every [[...]] token exactly as it is."

    def __init__(
        self,
        url: str,
        model: str,
        api_key_env: str | None = None,
        source_language: str = "English",
        pivot_language: str = "Spanish",
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        concurrency: int = 8,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        breaker: int = 16,
    ):
        self.url = url.rstrip("/")
        if not self.url.endswith("/chat/completions"):
            self.url += "/chat/completions" if self.url.endswith("/v1") else "/v1/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.source_language, self.pivot_language = source_language, pivot_language
        self.timeout, self.retries, self.backoff, self.max_backoff = timeout, retries, backoff, max_backoff
        self.concurrency, self.temperature, self.max_tokens, self.breaker = concurrency, temperature, max_tokens, breaker
        self._lock = threading.Lock()
        self._consecutive_failures = 0
        self.requests = 0
        self.retried = 0

    def check(self) -> list[str]:
        problems = []
        if not re.match(r"^https?://[^/\s]+", self.url):
            problems.append(f"url must be an http(s) URL of an OpenAI-compatible server, got {self.url!r}")
        if self.api_key_env and self.api_key_env not in os.environ:
            problems.append(f"api_key_env: environment variable {self.api_key_env} is not set")
        return problems

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "url": self.url, "model": self.model, "pivot_language": self.pivot_language, "temperature": self.temperature}

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key_env:
            h["Authorization"] = f"Bearer {os.environ.get(self.api_key_env, '')}"
        return h

    def _chat(self, text: str, src: str, tgt: str) -> str:
        body = {
            "model": self.model,
            "temperature": self.temperature,
            "messages": [{"role": "system", "content": self.SYSTEM.format(src=src, tgt=tgt)}, {"role": "user", "content": text}],
        }
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=self._headers(), method="POST")
        with self._lock:
            self.requests += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as e:
            code = e.code
            detail = f"HTTP {code}: {e.read()[:200].decode('utf-8', 'replace')}"
            raise EndpointError("backtranslation_endpoint_error", detail, retry=code in (408, 409, 425, 429) or code >= 500) from None
        except (TimeoutError, OSError) as e:  # URLError, connection refused/reset, socket timeout
            raise EndpointError("backtranslation_endpoint_error", f"{type(e).__name__}: {e}", retry=True) from None
        try:
            data = json.loads(payload)
            content = data["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise EndpointError("backtranslation_bad_response", f"{type(e).__name__}: {e}: {payload[:200]!r}", retry=False) from None
        return content.strip()

    def _with_retries(self, text: str, src: str, tgt: str, rng: random.Random) -> str:
        attempt = 0
        while True:
            with self._lock:
                if self.breaker and self._consecutive_failures >= self.breaker:
                    raise EndpointError("backtranslation_endpoint_unavailable", f"{self._consecutive_failures} requests failed in a row; not calling {self.url} again in this task", retry=False)
            try:
                out = self._chat(text, src, tgt)
                with self._lock:
                    self._consecutive_failures = 0
                return out
            except EndpointError as e:
                if not e.retry or attempt >= self.retries:
                    with self._lock:
                        self._consecutive_failures += 1
                    e.detail = f"{e.detail} (after {attempt + 1} attempts)"
                    raise
                with self._lock:
                    self.retried += 1
                delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + rng.random() / 2)
                time.sleep(delay)
                attempt += 1

    def _one(self, k: int, text: str) -> Translation:
        rng = random.Random(k)  # jitter only; results do not depend on it
        try:
            pivot = self._with_retries(text, self.source_language, self.pivot_language, rng)
            back = self._with_retries(pivot, self.pivot_language, self.source_language, rng)
        except EndpointError as e:
            return Translation(None, e.reason, e.detail[:300])
        return Translation(tidy(back))

    def round_trip(self, texts: list[str]) -> list[Translation]:
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(self._one, range(len(texts)), texts))


BACKENDS = {"apertium": ApertiumBackend, "transformers": TransformersBackend, "openai": OpenAIBackend}


def make_backend(name: str, options: dict[str, Any]) -> Backend:
    return BACKENDS[name](**options)


# --------------------------------------------------------------------------------------------
# checks on a round trip

_NUMBERS = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_of(text: str) -> list[str]:
    return sorted(n.replace(",", "") for n in _NUMBERS.findall(text))


def check_round_trip(original: str, back: str, *, min_ratio: float, max_ratio: float, preserve_numbers: bool) -> str | None:
    """Why a back-translation is not a usable variant (``backtranslation_unchanged``, ...), or None."""
    if not back.strip():
        return "backtranslation_empty"
    if " ".join(back.split()) == " ".join(original.split()):
        return "backtranslation_unchanged"
    ratio = len(back) / max(1, len(original))
    if not (min_ratio <= ratio <= max_ratio):
        return "backtranslation_length_ratio"
    if preserve_numbers and numbers_of(back) != numbers_of(original):
        return "backtranslation_numbers_changed"
    return None
