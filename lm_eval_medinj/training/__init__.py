"""Supervised fine-tuning on MedInjection-FR: the seven provenance mixtures and the SFT runs."""
