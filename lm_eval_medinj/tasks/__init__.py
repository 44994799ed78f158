"""This package's lm-eval tasks: the YAML files in this folder, written by ``_generate_configs.py``.

The folder of this module is what lm-eval indexes: the ``lm_eval.tasks`` entry point names this
module (lm-eval's task plugins, EleutherAI PR #4015, scan the folder of the module an entry point
names), ``lm_eval_medinj.paths.tasks_path()`` returns it, and the start-up hook adds it to plain
``lm_eval`` meanwhile (:mod:`lm_eval_medinj.lm_eval_hook`). It is the same folder in a wheel and in
an editable install.
"""
