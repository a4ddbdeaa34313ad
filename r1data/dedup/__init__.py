"""Near-duplicate detection for r1data's dedup stages, usable on its own:

- ``r1data.dedup.minhash``: ``MinHasher``, MinHash signatures of word n-grams, vectorised with NumPy;
- ``r1data.dedup.lsh``: LSH banding chosen from a Jaccard threshold, candidate pairs, verification,
  clusters (``near_duplicates`` decides one window in memory);
- ``r1data.dedup.windowed``: signatures read back from Parquet work files, band groups (the reduce
  phases of ``minhash_dedup``'s multi form that use them are in ``r1data.stages.minhash_phases``).
"""
