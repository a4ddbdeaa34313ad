"""Near-duplicate detection for r1data's dedup stages, usable on its own:

- ``r1data.dedup.minhash``: ``MinHasher``, MinHash signatures of word n-grams, vectorised with NumPy;
- ``r1data.dedup.lsh``: LSH banding chosen from a Jaccard threshold, candidate pairs, verification,
  clusters (``near_duplicates`` decides one window in memory);
- ``r1data.dedup.windowed``: the buckets and clusters reduce phases of ``minhash_dedup``'s multi form.
"""
