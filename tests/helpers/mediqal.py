"""Small MediQAl-shaped files (``mcqu/``, ``mcqm/``, ``oeq/``), written at test time.

The shape follows the MediQAl dataset card: MCQ records carry ``clinical_case`` (may be
empty), ``question``, ``answer_a`` .. ``answer_e``, ``correct_answers``, ``task``,
``medical_subject`` and ``question_type``; OEQ records ``clinical_case``,
``cc_question_number``, ``question``, ``answer``, ``medical_subject`` and ``question_type``.
Two clinical cases are each shared by several questions; ``correct_answers`` comes in the
forms a reader must accept ("a", "A, C", a list, letters run together).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CASE_CARDIO = (
    "Un homme de 62 ans, fumeur, consulte pour une douleur thoracique constrictive apparue au repos "
    "il y a deux heures. La pression artérielle est à 150/90 mmHg."
)
CASE_PEDIATRIE = "Un nourrisson de 8 mois est amené pour une fièvre à 39,5 °C évoluant depuis 48 heures."
OPTIONS = {
    "cardio": ["Électrocardiogramme", "Troponine", "Radiographie du bassin", "Échographie cardiaque", "IRM cérébrale"],
    "pedia": [
        "Bandelette urinaire",
        "Ponction lombaire",
        "Hémocultures",
        "Scanner thoracique",
        "Antibiothérapie probabiliste",
    ],
    "pharma": ["Amoxicilline", "Paracétamol", "Ceftriaxone", "Oméprazole", "Vancomycine"],
}


def _mcq(
    record_id: str,
    case: str,
    question: str,
    options: list[str],
    correct: Any,
    task: str,
    subject: str,
    question_type: str,
) -> dict[str, Any]:
    record = {"id": record_id, "clinical_case": case, "question": question}
    record |= {f"answer_{letter}": text for letter, text in zip("abcde", options, strict=True)}
    return record | {
        "correct_answers": correct,
        "task": task,
        "medical_subject": subject,
        "question_type": question_type,
    }


def mcqu_records(split: str) -> list[dict[str, Any]]:
    return [
        _mcq(
            f"mcqu-{split}-1",
            CASE_CARDIO,
            "Quel examen demandez-vous en premier ?",
            OPTIONS["cardio"],
            "a",
            "mcqu",
            "Cardiologie",
            "Reasoning",
        ),
        _mcq(
            f"mcqu-{split}-2",
            CASE_CARDIO,
            "Quel marqueur biologique confirme la nécrose ?",
            OPTIONS["cardio"],
            "B",
            "mcqu",
            "Cardiologie",
            "Reasoning",
        ),
        _mcq(
            f"mcqu-{split}-3",
            "",
            "Quel médicament est un antalgique de palier 1 ?",
            OPTIONS["pharma"],
            ["b"],
            "mcqu",
            "Pharmacologie",
            "Understanding",
        ),
        _mcq(
            f"mcqu-{split}-4",
            CASE_PEDIATRIE,
            "Quel examen réalisez-vous d'abord ?",
            OPTIONS["pedia"],
            "(a)",
            "mcqu",
            "Pédiatrie",
            "Reasoning",
        ),
        _mcq(
            f"mcqu-{split}-5",
            "",
            "Quel médicament est un inhibiteur de la pompe à protons ?",
            OPTIONS["pharma"],
            "D",
            "mcqu",
            "Pharmacologie",
            "Understanding",
        ),
    ]


def mcqm_records(split: str) -> list[dict[str, Any]]:
    return [
        _mcq(
            f"mcqm-{split}-1",
            CASE_CARDIO,
            "Quels examens sont utiles ?",
            OPTIONS["cardio"],
            "a,b,d",
            "mcqm",
            "Cardiologie",
            "Reasoning",
        ),
        _mcq(
            f"mcqm-{split}-2",
            CASE_PEDIATRIE,
            "Quels examens sont indiqués ?",
            OPTIONS["pedia"],
            "A, C",
            "mcqm",
            "Pédiatrie",
            "Reasoning",
        ),
        _mcq(
            f"mcqm-{split}-3",
            CASE_PEDIATRIE,
            "Quelles mesures sont urgentes ?",
            OPTIONS["pedia"],
            ["c", "e"],
            "mcqm",
            "Pédiatrie",
            "Reasoning",
        ),
        _mcq(
            f"mcqm-{split}-4",
            "",
            "Quels médicaments sont des antibiotiques ?",
            OPTIONS["pharma"],
            "ace",
            "mcqm",
            "Pharmacologie",
            "Understanding",
        ),
    ]


def oeq_records() -> list[dict[str, Any]]:
    def oeq(number: int, case: str, question: str, answer: str, question_type: str) -> dict[str, Any]:
        return {
            "id": f"oeq-test-{number}",
            "clinical_case": case,
            "cc_question_number": number,
            "question": question,
            "answer": answer,
            "medical_subject": "Cardiologie",
            "question_type": question_type,
        }

    return [
        oeq(1, CASE_CARDIO, "Quel est votre diagnostic principal ?", "Un syndrome coronarien aigu.", "Reasoning"),
        oeq(
            2,
            CASE_CARDIO,
            "Quel traitement débutez-vous ?",
            "Aspirine, anticoagulation et coronarographie.",
            "Reasoning",
        ),
        oeq(3, "", "Définissez l'angor stable.", "Une douleur thoracique d'effort cédant au repos.", "Understanding"),
    ]


def write_mediqal(root: Path) -> Path:
    """Write ``root/{mcqu,mcqm}/{test,validation}.json`` and ``root/oeq/test.json``; returns ``root``."""
    files = {
        "mcqu/test.json": mcqu_records("test"),
        "mcqu/validation.json": mcqu_records("validation"),
        "mcqm/test.json": mcqm_records("test"),
        "mcqm/validation.json": mcqm_records("validation"),
        "oeq/test.json": oeq_records(),
    }
    for name, records in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return root


# --------------------------------------------------------------------------- the authors' real shape

SUBJECTS_EN = ("Cardiology", "Pharmacy", "Hepato-Gastroenterology")


def _real_mcq(number: int, case: str | None, question: str, options: list[str], correct: str, task: str,
              subject: str, question_type: str) -> dict[str, Any]:  # fmt: skip
    record: dict[str, Any] = {"id": str(number), "clinical_case": case, "question": question}
    record |= {f"answer_{letter}": text for letter, text in zip("abcde", options, strict=True)}
    return record | {
        "correct_answers": correct,
        "task": task,
        "medical_subject": subject,
        "question_type": question_type,
    }


def real_shape_files() -> dict[str, list[dict[str, Any]]]:
    """MediQAl as the authors' files hold it (their code splits ``correct_answers`` like "A,C,E").

    ``correct_answers`` upper case with commas and no spaces; ``clinical_case`` null on most MCQU
    records; ``task`` "QCU" / "QCM"; English ``medical_subject`` values; and ids ``"1"``, ``"2"``...
    repeated across mcqu, mcqm and oeq.
    """
    mcqu = [
        _real_mcq(1, None, "Quel médicament est un antalgique de palier 1 ?", OPTIONS["pharma"], "B", "QCU",
                  "Pharmacy", "Understanding"),
        _real_mcq(2, CASE_CARDIO, "Quel examen demandez-vous en premier ?", OPTIONS["cardio"], "A", "QCU",
                  "Cardiology", "Reasoning"),
        _real_mcq(3, None, "Quel médicament est un inhibiteur de la pompe à protons ?", OPTIONS["pharma"], "D", "QCU",
                  "Hepato-Gastroenterology", "Understanding"),
    ]  # fmt: skip
    mcqm = [
        _real_mcq(1, CASE_CARDIO, "Quels examens sont utiles ?", OPTIONS["cardio"], "A,B,D", "QCM", "Cardiology",
                  "Reasoning"),
        _real_mcq(2, None, "Quels médicaments sont des antibiotiques ?", OPTIONS["pharma"], "A,C,E", "QCM", "Pharmacy",
                  "Understanding"),
        _real_mcq(3, CASE_CARDIO, "Quels signes imposent une coronarographie ?", OPTIONS["cardio"], "B,D", "QCM",
                  "Cardiology", "Reasoning"),
    ]  # fmt: skip
    oeq = [
        {"id": "1", "clinical_case": CASE_CARDIO, "cc_question_number": 1, "question": "Quel est votre diagnostic ?",
         "answer": "Un syndrome coronarien aigu.", "medical_subject": "Cardiology", "question_type": "Reasoning"},
        {"id": "2", "clinical_case": None, "cc_question_number": None, "question": "Définissez l'angor stable.",
         "answer": "Une douleur thoracique d'effort cédant au repos.", "medical_subject": "Cardiology",
         "question_type": "Understanding"},
    ]  # fmt: skip
    return {"mcqu/test.json": mcqu, "mcqu/validation.json": mcqu[:2], "mcqm/test.json": mcqm,
            "mcqm/validation.json": mcqm[:2], "oeq/test.json": oeq}  # fmt: skip


def write_mediqal_real(root: Path) -> Path:
    """:func:`real_shape_files` in MediQAl's layout under ``root``; returns ``root``."""
    for name, records in real_shape_files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return root
