"""lm-eval-medinj: the MedInjection-FR benchmark as an lm-evaluation-harness plugin."""

from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.records import MedRecord, RecordError

__all__ = ["MedRecord", "RecordError", "tasks_path"]
