"""lm-eval model backends of this package: ``medinj-hf`` and ``medinj-vllm``.

They join lm-eval's model registry as lazy ``module:Class`` entries (vLLM is imported only when
used): through the start-up hook when lm-eval loads its models (plain ``lm_eval --model
medinj-hf``), or :func:`lm_eval_medinj.lm_eval_hook.register_backends` (``medinj eval``).
"""

BACKENDS = {
    "medinj-hf": "lm_eval_medinj.models.hf:MedinjHFLM",
    "medinj-vllm": "lm_eval_medinj.models.vllm:MedinjVLLM",
}
