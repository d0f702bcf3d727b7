"""RecDataModule with profiles written by a language model as user/item text (embedded and cached)."""

from __future__ import annotations

import json

import pytest
import torch

from darec.data import RecDataModule, write_split_dir
from darec.llm import FakeLLM
from darec.profiles import ProfileJob, ProfileSource
from tests.profiles.conftest import HashEncoder, make_data


def _profiles(tmp_path, entity="item", limit=None):
    data, log = make_data()
    out = tmp_path / f"{entity}s.jsonl"
    llm = FakeLLM(lambda prompt: json.dumps({"summary": f"profile {len(prompt)} {prompt[-40:]}"}))
    ProfileJob(llm, ProfileSource(data, log), entity, out, limit=limit, progress=False).run()
    return out


def _module(tmp_path, **kwargs):
    data, _ = make_data()
    split = tmp_path / "split"
    if not split.exists():
        write_split_dir(data, split)
    return RecDataModule(str(split), text_encoder=kwargs.pop("encoder", HashEncoder()), cache_dir=str(tmp_path / "cache"), **kwargs)


def test_profile_summaries_replace_the_template_text(tmp_path):
    items = _profiles(tmp_path)
    plain = _module(tmp_path)
    plain.setup("fit")
    encoder = HashEncoder()
    dm = _module(tmp_path, item_profiles=str(items), encoder=encoder)
    dm.setup("fit")
    summaries = [json.loads(line)["summary"] for line in items.read_text().splitlines()]
    assert encoder.calls[-1] == summaries  # the item text that was encoded
    assert not torch.equal(dm.text_embeddings["item"], plain.text_embeddings["item"])
    assert torch.equal(dm.text_embeddings["user"], plain.text_embeddings["user"])  # users keep their template text
    assert dm.protocol["text_profiles"]["item"]["path"] == str(items)


def test_embeddings_are_cached_and_a_changed_file_is_encoded_again(tmp_path):
    items = _profiles(tmp_path)
    first = HashEncoder()
    _module(tmp_path, item_profiles=str(items), encoder=first).setup("fit")
    again = HashEncoder()
    _module(tmp_path, item_profiles=str(items), encoder=again).setup("fit")
    assert again.calls == []  # both sides from the cache
    lines = items.read_text().splitlines()
    changed = json.loads(lines[2]) | {"summary": "a brand new profile"}
    items.write_text("\n".join(lines) + "\n" + json.dumps(changed) + "\n")  # appended: the last line wins
    third = HashEncoder()
    dm = _module(tmp_path, item_profiles=str(items), encoder=third)
    dm.setup("fit")
    assert len(third.calls) == 1 and third.calls[0][2] == "a brand new profile"


def test_missing_profiles_are_an_error_or_keep_the_template(tmp_path):
    users = _profiles(tmp_path, "user", limit=2)
    with pytest.raises(ValueError, match=r"user_profiles=.*: 2 of 4 users have no profile, e.g. ids 2 \(uc\), 3 \(ud\)"):
        _module(tmp_path, user_profiles=str(users)).setup("fit")
    encoder = HashEncoder()
    with pytest.warns(UserWarning, match="2 of 4 users have no profile"):
        _module(tmp_path, user_profiles=str(users), missing_profiles="template", encoder=encoder).setup("fit")
    texts = next(call for call in encoder.calls if call[-1] == "template user 3")
    assert texts[2:] == ["template user 2", "template user 3"] and texts[0].startswith("profile ")


def test_profiles_of_other_data_or_the_wrong_entity_are_refused(tmp_path):
    items = _profiles(tmp_path)
    with pytest.raises(ValueError, match="holds no user profiles"):
        _module(tmp_path, user_profiles=str(items)).setup("fit")
    lines = [json.loads(line) for line in items.read_text().splitlines()]
    lines[1]["raw_id"] = "elsewhere"
    items.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ValueError, match="1 profile\\(s\\) name another raw id than the data \\(id 1: 'elsewhere'"):
        _module(tmp_path, item_profiles=str(items)).setup("fit")
    with pytest.raises(ValueError, match="`missing_profiles` must be 'error' or 'template'"):
        _module(tmp_path, missing_profiles="skip")
    with pytest.raises(ValueError, match="`text_encoder` is None"):
        RecDataModule("x", text_encoder=None, item_profiles=str(items))
