"""LCScorer (p("Yes") of a frozen LLM) and ICScorer (the text-augmented CTR model)."""

from __future__ import annotations

import pytest
import torch

from darec.ctr import FM, CTRModule, DeepFM
from darec.expctr import ICScorer, LCScorer, lc_reward
from darec.llm import FakeLLM
from tests.ctr.synthetic import KeywordEncoder


class KeywordLLM:
    """Scores "Yes" high when the question's explanation says "love", "No" high otherwise; records prompts."""

    def __init__(self):
        self.prompts = []

    def choice_logits(self, prompt, options):
        self.prompts.append(prompt)
        yes = 2.0 if "love" in prompt else -2.0
        return torch.tensor([yes, -yes])


def test_lc_scorer_is_the_softmax_of_yes_and_no_and_sees_only_the_explanation():
    llm = KeywordLLM()
    scorer = LCScorer(llm)
    p = scorer(["They would love it.", "They  would\nskip it."])
    torch.testing.assert_close(p, torch.tensor([4.0, -4.0]).sigmoid())
    assert '"They would skip it."' in llm.prompts[1] and "Answer Yes or No" in llm.prompts[1]
    assert lc_reward(["They would love it.", "meh"], [1, 0], scorer).agreement == 1.0
    constant = LCScorer(FakeLLM(logits={"Yes": -1.0, "No": -1.0}))
    assert constant(["anything"]).tolist() == [0.5]


def test_lc_scorer_errors():
    with pytest.raises(TypeError, match="choice_logits"):
        LCScorer(object())
    with pytest.raises(ValueError, match=r"\{explanation\}"):
        LCScorer(KeywordLLM(), template="Will they click?")
    with pytest.raises(ValueError, match="two different answers"):
        LCScorer(KeywordLLM(), choices=("Yes", "Yes"))


def test_ic_scorer_feeds_the_embedding_to_the_ctr_model():
    torch.manual_seed(0)
    model = CTRModule(DeepFM(num_users=3, num_items=4, embedding_dim=4, text_dim=4))
    scorer = ICScorer(model, KeywordEncoder())
    texts, users, items = ["they will enjoy", "they will not enjoy it"], torch.tensor([0, 2]), torch.tensor([1, 3])
    p = scorer(texts, users, items)
    expected = model.backbone(users, items, KeywordEncoder().encode(texts)).sigmoid()
    torch.testing.assert_close(p, expected.detach())
    assert not any(param.requires_grad for param in model.parameters())  # frozen
    with pytest.raises(ValueError, match="text_dim=0"):
        ICScorer(FM(num_users=2, num_items=2), KeywordEncoder())
    with pytest.raises(ValueError, match="expects text_dim=8"):
        ICScorer(FM(num_users=2, num_items=2, text_dim=8), KeywordEncoder())(["a"], [0], [1])
