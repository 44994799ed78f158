"""A lab that installs the built wheel runs the whole study with ``medinj`` and plain ``lm_eval``.

The wheel is built from this checkout and installed into a fresh venv outside it. The venv sees
the test environment's dependencies through a plain path line (so nothing of the checkout's
editable install, nor its start-up ``.pth``, is active there) and the wheel's own
``lm_eval_medinj_tasks.pth``. Each subcommand then runs its smallest real job from a folder
outside the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.training.fixtures import write_pools

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELLED = REPO_ROOT / "tests" / "judge" / "data" / "labelled_small.csv"
TRAIN_FLAGS = [
    "--total", "20", "--max_steps", "2", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1",
    "--max_length", "256", "--use_cpu", "true", "--bf16", "false", "--activation_checkpointing", "false",
    "--eval_strategy", "no", "--save_steps", "1", "--report_to", "none", "--dataloader_num_workers", "0",
]  # fmt: skip


class Installed:
    """The venv with the wheel installed, and a folder outside the checkout to run in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "venv" / "bin" / "python"
        self.medinj = root / "venv" / "bin" / "medinj"
        self.work = root / "work"
        self.work.mkdir()

    def run(self, *command: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDINJ_LM_EVAL_TASKS", "VIRTUAL_ENV")}
        env.update(
            HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false"
        )
        completed = subprocess.run(
            [str(part) for part in command], cwd=self.work, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert completed.returncode == 0, f"{command}\n{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}"
        return completed


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel-install")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(root), str(REPO_ROOT)]
    subprocess.run(build, check=True, capture_output=True, timeout=600)
    (wheel,) = root.glob("lm_eval_medinj-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=600)
    venv = Installed(root)
    install = [sys.executable, "-m", "pip", "--python", str(venv.python), "install", "--no-deps", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=600)
    site = Path(venv.run(venv.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return venv


def test_the_package_comes_from_the_wheel(installed: Installed) -> None:
    where = installed.run(installed.python, "-c", "import lm_eval_medinj, _lm_eval_medinj_startup as s; "
                          "print(lm_eval_medinj.__file__); print(s.__file__)").stdout.split()  # fmt: skip
    assert all(Path(path).is_relative_to(installed.root / "venv") for path in where), where


def test_train_dry_run_and_a_few_steps(installed: Installed, tiny_model_dir: Path) -> None:
    pools = write_pools(installed.root / "pools")
    runs = installed.root / "runs"
    dry = installed.run(installed.medinj, "train", "--mixtures", "NAT", "--data_dir", pools, "--total", "20",
                        "--output_dir", runs, "--dry-run")  # fmt: skip
    assert "NAT" in dry.stdout + dry.stderr and (runs / "NAT" / "manifest.json").is_file()
    installed.run(installed.medinj, "train", "--mixtures", "NAT", "--data_dir", pools, "--output_dir", runs,
                  "--model_name_or_path", tiny_model_dir, *TRAIN_FLAGS)  # fmt: skip
    metrics = json.loads((runs / "NAT" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["global_step"] == 2 and (runs / "NAT" / "adapter" / "adapter_config.json").is_file()


def test_plain_lm_eval_with_medinj_hf_then_report(installed: Installed, tiny_model_dir: Path) -> None:
    demo = installed.run(installed.python, "-c", "from lm_eval_medinj.paths import demo_data_path as d; print(d())")
    run = installed.root / "eval"
    installed.run(installed.python, "-m", "lm_eval", "--model", "medinj-hf", "--tasks", "medinj_mcq_gen",
                  "--model_args", f"pretrained={tiny_model_dir},dtype=float32", "--device", "cpu",
                  "--metadata", json.dumps({"data_dir": demo.stdout.strip()}), "--apply_chat_template",
                  "--limit", "3", "--log_samples", "--output_path", run)  # fmt: skip
    (results,) = run.rglob("results_*.json")
    configs = json.loads(results.read_text(encoding="utf-8"))["configs"]
    assert {config["metadata"]["lm_eval_medinj_version"] for config in configs.values()} == {"0.1.0"}
    samples = [json.loads(line) for path in run.rglob("samples_*.jsonl") for line in path.read_text().splitlines()]
    assert {sample["doc"]["data_revision"][:7] for sample in samples} == {"sha256:"}, "the data read, recorded"
    report = installed.root / "report"
    installed.run(installed.medinj, "report", "--model", f"base={run}", "--baseline", "base", "--bootstrap", "200",
                  "--out", report)  # fmt: skip
    rows = (report / "table1.csv").read_text(encoding="utf-8")
    assert "medinj_mcq_gen" in rows and (report / "report.md").is_file()


def test_judge_and_meta_eval(installed: Installed, tiny_model_dir: Path) -> None:
    items = installed.root / "answers.jsonl"
    question, reference = "Que traite l'amoxicilline ?", "Les infections bactériennes."
    rows = [
        {"id": f"a{i}", "question": question, "reference": reference, "candidate": answer}
        for i, answer in enumerate([reference, "La douleur."])
    ]
    items.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    judged = installed.root / "judged"
    cache = installed.root / "judge.sqlite"
    out = installed.run(installed.medinj, "judge", items, "--judge", f"hf:{tiny_model_dir}", "--cache", cache,
                        "--output-dir", judged, "--no-progress")  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1])["n"] == 2
    assert len(list(judged.glob("judge_*.jsonl"))) == 1
    meta = installed.root / "meta"
    installed.run(installed.medinj, "meta-eval", "--data", LABELLED, "--judge", f"hf:{tiny_model_dir}", "--cache",
                  cache, "--out", meta, "--n-boot", "50", "--no-progress")  # fmt: skip
    assert json.loads((meta / "metrics.json").read_text(encoding="utf-8"))["n_items"] > 0


def test_the_other_subcommands(installed: Installed, tiny_model_dir: Path, tmp_path: Path) -> None:
    """tasks-path, eval, breakdown, overlap and annotate: each one's smallest real job, from the wheel."""
    from tests.oeq.conftest import OEQ_FIXTURE_DIR
    from tests.oeq.models import build_tiny_encoder

    tasks = installed.run(installed.medinj, "tasks-path").stdout.strip()
    assert Path(tasks).is_relative_to(installed.root / "venv") and (Path(tasks) / "medinj").is_dir()

    pools = write_pools(installed.root / "overlap-pools", test_sizes={"native": {"mcqu": 3}})
    run = installed.root / "eval-choice"
    data = json.dumps({"data_dir": str(pools)})
    installed.run(installed.medinj, "eval", "--model", "hf", "--tasks", "medinj_mcqu_native", "--device", "cpu",
                  "--model_args", f"pretrained={tiny_model_dir},dtype=float32", "--limit", "2",
                  "--metadata", data, "--log_samples", "--output_path", run)  # fmt: skip
    table = installed.run(installed.medinj, "breakdown", run, "--by", "provenance").stdout
    assert "### medinj_mcqu_native by provenance" in table

    mixtures = installed.root / "overlap-runs"
    installed.run(installed.medinj, "train", "--mixtures", "NAT", "--data_dir", pools, "--total", "20",
                  "--output_dir", mixtures, "--dry-run")  # fmt: skip
    audit = installed.root / "audit"
    installed.run(installed.medinj, "overlap", "--train", mixtures, "--tests", "medinj_mcqu_native",
                  "--metadata", data, "--out", audit, "--no-progress")  # fmt: skip
    assert "flagged" in json.loads((audit / "overlap.json").read_text(encoding="utf-8"))

    encoder = build_tiny_encoder(tmp_path / "encoder")
    metadata = {"data_dir": str(OEQ_FIXTURE_DIR), "bertscore_model": str(encoder), "bertscore_layer": 2,
                "bertscore_rescale": False}  # fmt: skip
    oeq = installed.root / "eval-oeq"
    installed.run(installed.python, "-m", "lm_eval", "--model", "hf", "--tasks", "medinj_oeq_native",
                  "--model_args", f"pretrained={tiny_model_dir},dtype=float32", "--device", "cpu",
                  "--metadata", json.dumps(metadata), "--gen_kwargs", "max_gen_toks=8", "--log_samples",
                  "--output_path", oeq)  # fmt: skip
    ann = installed.root / "ann"
    installed.run(installed.medinj, "annotate", "sample", "--model", f"tiny={oeq}", "--n", "2", "--out", ann)
    assert len((ann / "items.jsonl").read_text(encoding="utf-8").splitlines()) == 2
    installed.run(installed.medinj, "annotate", "agreement", ann)
