"""The ``medinj-*`` backends stop loudly on an lm-eval whose members they rely on are gone."""

from __future__ import annotations

import pytest

from lm_eval_medinj.models.internals import LmEvalInternalsError, require_members


def test_the_installed_lm_eval_has_every_member_medinj_hf_relies_on() -> None:
    import lm_eval_medinj.models.hf  # noqa: F401  (the check runs at import)


def test_a_renamed_member_stops_the_import_naming_it_and_the_way_out() -> None:
    with pytest.raises(LmEvalInternalsError, match=r"medinj-hf was written against lm-eval 0\.4\.13.*no Stub\._gone"):
        require_members(type("Stub", (), {}), ["_gone"], "medinj-hf")
    with pytest.raises(LmEvalInternalsError, match="Install lm-eval==0.4.13"):
        require_members(type("Stub", (), {}), ["generate_until"], "medinj-hf")
