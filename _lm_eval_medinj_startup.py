"""lm-eval-medinj's start-up hook, imported by ``lm_eval_medinj_tasks.pth`` in site-packages.

Puts a finder at the front of ``sys.meta_path`` that imports nothing and answers ``None`` for every
module but ``lm_eval.tasks.manager``; for that one it hands over to ``lm_eval_medinj.lm_eval_hook``,
which makes plain ``lm_eval`` find this package's tasks. Off with ``MEDINJ_LM_EVAL_TASKS=0``.
"""

import os
import sys


class MedinjLmEvalTasksFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "lm_eval.tasks.manager":
            return None
        from lm_eval_medinj.lm_eval_hook import find_spec

        return find_spec(name, path, target)


def install():
    if os.environ.get("MEDINJ_LM_EVAL_TASKS", "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if not any(type(finder).__name__ == "MedinjLmEvalTasksFinder" for finder in sys.meta_path):
        sys.meta_path.insert(0, MedinjLmEvalTasksFinder())


install()
