"""Open-ended questions (OEQ): French-correct text metrics and the lm-eval task hooks.

Each metric is a plain function (:mod:`.bleu`, :mod:`.rouge`, :mod:`.meteor`,
:mod:`.bertscore`, :mod:`.lengths`); :mod:`.task` wires them into lm-eval. The settings and
the reasons behind them are documented in ``docs/OEQ.md``.
"""
