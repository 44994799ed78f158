"""Build the MedInjection-FR SFT mixtures and fine-tune one base model on each: the model card's
``python train/sft.py``, the same as ``medinj train``.

    python train/sft.py --mixtures all --data_dir DATA --dry-run
    python train/sft.py --mixtures NAT-TRAD --model_name_or_path BASE [--method dora] [--merge]
    accelerate launch --config_file train/accelerate/ddp.yaml train/sft.py --mixtures all ...

See ``medinj train --help`` and docs/TRAINING.md; the work is done by ``lm_eval_medinj.cli.train``.
"""

from lm_eval_medinj.cli.train import main

if __name__ == "__main__":
    main()
