"""Multiple-choice questions (MCQU and MCQ): answer strings, the paper's metrics, and the tasks' hooks."""
