"""``python -m lm_eval_medinj.cli``: the ``medinj`` command."""

from lm_eval_medinj.cli import main

main()
