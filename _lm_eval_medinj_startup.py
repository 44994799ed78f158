"""lm-eval-medinj's start-up hook, imported by ``lm_eval_medinj_tasks.pth`` in site-packages.

Puts a finder at the front of ``sys.meta_path`` that imports nothing and answers ``None`` for every
module but the three lm-eval modules ``lm_eval_medinj.lm_eval_hook`` registers with (its task
manager, its model package and its ``LM`` class); for those it hands over to that module. It can
never break lm-eval: if this package cannot be imported (an editable checkout moved or deleted) or
the hand-over fails, it says so once on stderr and stands aside, and lm-eval loads as if it were
not there. Off with ``MEDINJ_LM_EVAL_TASKS=0``.
"""

import os
import sys

TARGETS = ("lm_eval.tasks.manager", "lm_eval.models", "lm_eval.api.model")


class MedinjLmEvalTasksFinder:
    failed = False

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name not in TARGETS or cls.failed:
            return None
        try:
            from lm_eval_medinj.lm_eval_hook import find_spec

            return find_spec(name, path, target)
        except Exception as error:  # the package is gone or broken: lm-eval must still work
            cls.failed = True
            sys.stderr.write(
                f"lm-eval-medinj: start-up hook disabled ({type(error).__name__}: {error}); lm-eval runs without "
                "the medinj tasks and backends. Reinstall lm-eval-medinj, or remove lm_eval_medinj_tasks.pth "
                "from site-packages, or set MEDINJ_LM_EVAL_TASKS=0.\n"
            )
            return None


def install():
    if os.environ.get("MEDINJ_LM_EVAL_TASKS", "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if not any(type(finder).__name__ == "MedinjLmEvalTasksFinder" for finder in sys.meta_path):
        sys.meta_path.insert(0, MedinjLmEvalTasksFinder())


install()
