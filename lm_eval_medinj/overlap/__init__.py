"""``medinj overlap``: a contamination audit of training data against test sets (docs/OVERLAP.md).

A test question is matched against every training record in three ways, on the same normalised
text (:mod:`.text`): an exact match, a share of its word n-grams found in one training record
(:mod:`.ngrams`), and a near-duplicate by Jaccard similarity over word 3-shingles, found by
MinHash LSH (``datasketch``) and verified exactly (:mod:`.near`). :mod:`.audit` runs the three
over a training corpus (:mod:`.training_side`) and the test sets of lm-eval tasks
(:mod:`.test_side`); :mod:`.report` writes ``overlap.json`` and ``overlap.md``.
"""
