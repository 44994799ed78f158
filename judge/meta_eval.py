"""Choose a judge on human ratings: the model card's ``python judge/meta_eval.py``, the same as ``medinj meta-eval``.

    python judge/meta_eval.py --data ratings.csv --judge hf:A --judge openai:B@http://HOST:8000/v1 --out DIR

See ``medinj meta-eval --help`` and docs/JUDGE.md; the work is done by ``lm_eval_medinj.cli.meta_eval``.
"""

from lm_eval_medinj.cli.meta_eval import main

if __name__ == "__main__":
    main()
