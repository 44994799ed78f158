"""Human expert review of open answers: blinded rating items, a rating page, inter-rater agreement.

- :mod:`~lm_eval_medinj.annotate.records`: the annotation folder's file formats (pydantic schemas);
- :mod:`~lm_eval_medinj.annotate.journal`: a rater's append-only, fsync'd ratings journal;
- :mod:`~lm_eval_medinj.annotate.folder`: reading and writing a folder, ratings per item and per model;
- :mod:`~lm_eval_medinj.annotate.sample`: drawing blinded, stratified items from lm-eval outputs;
- :mod:`~lm_eval_medinj.annotate.server`: the local rating page (Starlette + uvicorn);
- :mod:`~lm_eval_medinj.annotate.agreement`: per-rater counts, kappa / alpha, per-model means;
- :mod:`~lm_eval_medinj.annotate.cli`: ``medinj annotate sample | serve | agreement``.

The folder format is in docs/HUMAN.md.
"""
