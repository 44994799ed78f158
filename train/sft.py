"""Build the MedInjection-FR SFT mixtures and fine-tune one base model on each (DoRA, LoRA or full).

    python train/sft.py --mixtures all --data_dir DATA --dry-run
    python train/sft.py --mixtures NAT-TRAD --model_name_or_path BASE [--method dora] [--merge]
    accelerate launch --config_file train/accelerate/ddp.yaml train/sft.py --mixtures all ...

Defaults are the authors' run (train/configs/paper.yaml): each record's own conversation as one
chat-formatted text, loss on every token, evaluation on the validation split every epoch;
``--settings FILE.yaml`` replaces them and flags override both. A data or usage error is one line
(``--debug`` or ``MEDINJ_DEBUG=1``: the traceback). The work is done by
``lm_eval_medinj.training.cli``. See docs/TRAINING.md.
"""

from lm_eval_medinj.training.cli import main

if __name__ == "__main__":
    main()
