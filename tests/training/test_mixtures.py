"""The seven mixtures: exact counts, stratification, determinism, shortfalls, manifests."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from lm_eval_medinj.training.mixtures import (
    CONFIGURATIONS,
    MixtureSettings,
    MixtureShortfallError,
    build_mixture,
    ids_sha256,
    largest_remainder,
    load_pools,
    provenance_quotas,
    resolve_configs,
    write_mixture,
)
from tests.training.fixtures import DEFAULT_SIZES

SETTINGS = MixtureSettings(total=40, seed=7)


@pytest.fixture(scope="module")
def pools(pools_dir: Path):
    return load_pools(("native", "translated", "synthetic"), ("mcq", "mcqu", "oeq"), pools_dir)


def test_paper_total_is_split_equally_with_the_remainder_in_provenance_order() -> None:
    assert provenance_quotas(33_493, ("native", "translated", "synthetic")) == {
        "native": 11_165,
        "translated": 11_164,
        "synthetic": 11_164,
    }
    assert provenance_quotas(33_493, ("synthetic", "translated")) == {
        "translated": 16_747,
        "synthetic": 16_746,
    }
    assert provenance_quotas(33_493, ("synthetic",)) == {"synthetic": 33_493}


def test_largest_remainder_is_proportional_and_exact() -> None:
    assert largest_remainder(14, {"mcq": 30, "mcqu": 15}) == {"mcq": 9, "mcqu": 5}
    assert largest_remainder(13, {"mcq": 20, "mcqu": 20}) == {"mcq": 7, "mcqu": 6}  # tie: first listed
    assert sum(largest_remainder(1000, {"a": 7, "b": 11, "c": 13}).values()) == 1000


@pytest.mark.parametrize("config", list(CONFIGURATIONS))
def test_every_configuration_has_exact_counts_and_strata(pools, config: str) -> None:
    mixture = build_mixture(config, pools, SETTINGS)
    provenances = CONFIGURATIONS[config]
    quotas = provenance_quotas(40, provenances)
    assert len(mixture.records) == 40
    assert len({r.id for r in mixture.records}) == 40
    assert Counter(r.provenance for r in mixture.records) == quotas
    for provenance in provenances:
        pool = {t: n for t, n in DEFAULT_SIZES[provenance].items() if t in ("mcq", "mcqu")}
        tasks = Counter(r.task for r in mixture.records if r.provenance == provenance)
        assert tasks == largest_remainder(quotas[provenance], pool)
    counts = mixture.manifest["counts"]
    assert counts["provenance"] == {p: quotas[p] for p in provenances}
    assert sum(counts["origin"].values()) == 40
    assert mixture.manifest["ids_sha256"] == ids_sha256(mixture.records)


def test_default_tasks_leave_open_questions_out_and_oeq_can_be_selected(pools) -> None:
    assert {r.task for r in build_mixture("ALL", pools, SETTINGS).records} == {"mcq", "mcqu"}
    with_oeq = build_mixture("NAT", pools, MixtureSettings(total=45, seed=7, tasks=("mcq", "mcqu", "oeq")))
    assert Counter(r.task for r in with_oeq.records) == {"mcq": 27, "mcqu": 13, "oeq": 5}


def test_builds_are_deterministic_and_seed_dependent(pools_dir: Path, pools) -> None:
    reloaded = load_pools(("native", "translated", "synthetic"), ("mcq", "mcqu"), pools_dir)
    first = build_mixture("ALL", pools, SETTINGS)
    second = build_mixture("ALL", reloaded, SETTINGS)
    assert [r.id for r in first.records] == [r.id for r in second.records]
    assert first.manifest == second.manifest
    other_seed = build_mixture("ALL", pools, MixtureSettings(total=40, seed=8))
    assert other_seed.manifest["ids_sha256"] != first.manifest["ids_sha256"]


def test_a_provenance_in_a_pair_is_a_subset_of_its_single_mixture(pools) -> None:
    single = {r.id for r in build_mixture("NAT", pools, SETTINGS).records}
    pair = {r.id for r in build_mixture("NAT-SYN", pools, SETTINGS).records if r.provenance == "native"}
    assert pair < single


def test_a_short_pool_is_an_error_naming_pool_and_shortfall(pools) -> None:
    with pytest.raises(MixtureShortfallError, match=r"native train pool .* holds 45 .* needs 60: short by 15"):
        build_mixture("NAT", pools, MixtureSettings(total=60))


def test_smaller_mixtures_when_allowed_take_the_whole_short_pool(pools) -> None:
    mixture = build_mixture("NAT-TRAD", pools, MixtureSettings(total=100, allow_smaller=True))
    assert Counter(r.provenance for r in mixture.records) == {"native": 45, "translated": 48}
    assert mixture.manifest["shortfalls"] == {"native": 5, "translated": 2}
    assert mixture.manifest["total"] == 93


def test_manifest_and_ids_are_written(pools, tmp_path: Path) -> None:
    mixture = build_mixture("TRAD-SYN", pools, SETTINGS)
    manifest = json.loads(write_mixture(mixture, tmp_path).read_text(encoding="utf-8"))
    assert manifest["seed"] == 7
    assert manifest["settings"]["tasks"] == ["mcq", "mcqu"]
    assert manifest["counts"]["task"] == dict(Counter(r.task for r in mixture.records))
    assert (tmp_path / "ids.txt").read_text(encoding="utf-8").split() == [r.id for r in mixture.records]
    assert not list(tmp_path.glob(".*tmp"))


def test_configuration_names() -> None:
    assert resolve_configs(["all"]) == list(CONFIGURATIONS)
    assert resolve_configs(["nat-trad", "NAT-TRAD", "syn"]) == ["NAT-TRAD", "SYN"]
    with pytest.raises(ValueError, match="unknown configuration"):
        resolve_configs(["NAT-ALL"])


def test_the_manifest_names_the_data_read(pools, pools_dir: Path) -> None:
    manifest = build_mixture("NAT-SYN", pools, SETTINGS, str(pools_dir)).manifest
    revisions = manifest["data_revisions"]
    assert set(revisions) == {"native", "synthetic"}
    # One sha256 per file of the mixture's tasks (mcq, mcqu of the train split): local data has no Hub commit.
    assert all(len(values) == 2 and all(v.startswith("sha256:") for v in values) for values in revisions.values())
