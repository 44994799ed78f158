"""LLM-as-a-judge for open answers: backends, cached scoring, calibration and meta-evaluation.

See ``docs/JUDGE.md``. Command-line entry points: ``judge/score.py`` and ``judge/meta_eval.py``.
"""
