"""A minimal, fast Mixture-of-Experts trainer for r1data's token shards.

Run it with ``r1data train CONFIG.yaml`` (or ``python -m r1data.train CONFIG.yaml`` / ``torchrun ...
-m r1data.train CONFIG.yaml`` from a source tree). Everything under this package imports only torch,
numpy, pyarrow, tokenizers and PyYAML, so it runs on a bare GPU image with ``PYTHONPATH=.``.

Modules: ``config`` (typed, validated configuration), ``model`` (decoder-only transformer),
``moe`` (router, experts, balancing), ``data`` (token-shard streaming and packing), ``checkpoint``
(atomic, resumable), ``metrics`` (JSONL, MFU, expert load), ``loop`` (the training loop),
``plot`` (PNG curves of a run).
"""
