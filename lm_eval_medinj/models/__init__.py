"""lm-eval model backends of this package, registered on import: ``medinj-hf``, ``medinj-vllm``.

Registration is lazy (the classes load when lm-eval asks for them), so importing this package
does not import vLLM.
"""

from __future__ import annotations

import lm_eval.models  # noqa: F401  (registers lm-eval's own models first)
from lm_eval.api.registry import model_registry

BACKENDS = {
    "medinj-hf": "lm_eval_medinj.models.hf:MedinjHFLM",
    "medinj-vllm": "lm_eval_medinj.models.vllm:MedinjVLLM",
}

for _name, _target in BACKENDS.items():
    if _name not in model_registry:
        model_registry.register(_name, target=_target)
