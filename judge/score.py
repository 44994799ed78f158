"""Score open answers with an LLM judge: the model card's ``python judge/score.py``, the same as ``medinj judge``.

    python judge/score.py out/lm-eval-run --judge hf:google/medgemma-27b-text-it [--calibration cal.json]

See ``medinj judge --help`` and docs/JUDGE.md; the work is done by ``lm_eval_medinj.cli.judge``.
"""

from lm_eval_medinj.cli.judge import main

if __name__ == "__main__":
    main()
