"""Tokenizers for r1data shards: train a byte-level BPE (``bpe.train_bpe``) and turn text shards into
token shards the trainer streams (``encode.encode_shards``).

Only pyarrow, numpy and ``tokenizers`` are needed, so this runs wherever the trainer runs.

Token shard format (``OUT/tokens/part-XXXXX.parquet``, one per input shard, zstd)::

    id        string          the document id from the text shard
    source    string          the document's source (web, books, code, ...)
    tokens    list<int32>     token ids of the text, followed by one end-of-text id
    n_tokens  int32           len(tokens), end-of-text included
    n_bytes   int64           UTF-8 bytes of the text (for bits-per-byte)

Row groups hold about ``row_group_tokens`` tokens each; the trainer reads one row group at a time.
``OUT/tokens/manifest.json`` names the tokenizer (path, sha256, vocabulary size, end-of-text id),
every input shard (sha256, rows) and every output (rows, tokens, bytes, sha256).
"""
