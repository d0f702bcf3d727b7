"""RX-4 RubricJudge: exact aggregates with a scripted judge, the same numbers through a loopback OpenAI stub."""

from __future__ import annotations

import ipaddress
import math
import socket

import pytest

from darec.llm import FakeLLM
from darec.recexplainer.judge_report import JudgeReport
from darec.recexplainer.rubric_judge import RUBRIC_TEMPLATE, RubricJudge
from tests.llm.test_openai_compatible import MODEL, stub  # noqa: F401  (the fixture)

HISTORY = ["Heat (1995)", "Casino (1995)", "Fargo (1996)"]
EXPLANATIONS = [
    "Yes. The user watches crime films (Heat, Casino, Fargo) and Ronin is one.",
    "Yes, because it is a film.",
    "No, the user dislikes crime films.",
    "Yes. Crime films again.",
    "Yes.",
    "Yes, a crime thriller like Heat.",
]


def _cases(n: int = len(EXPLANATIONS)) -> dict:
    return {"histories": [HISTORY] * n, "items": ["Ronin (1998)"] * n, "decisions": [True] * n}


def test_scripted_judge_gives_the_exact_mean_distribution_and_unparsed_bucket():
    answers = ["<score>3</score>", "Poor explanation. <score>1</score>", "<score>0</score>", " <SCORE> 2 </SCORE> ",
               "I would give it a 2.", "<score>3</score>"]  # fmt: skip
    llm = FakeLLM(answers)
    report = RubricJudge(llm, batch_size=4).judge(EXPLANATIONS, **_cases())
    assert report.scores == (3, 1, 0, 2, None, 3)
    assert report.mean == (3 + 1 + 0 + 2 + 3) / 5 == 1.8
    assert report.distribution == {0: 1, 1: 1, 2: 1, 3: 2}
    assert report.unparsed == 1 and report.unparsed_cases == [4] and report.unparsed_rate == pytest.approx(1 / 6)
    assert report.parsed == 5 and report.n == 6 and report.answers == tuple(answers)
    assert "no <score>...</score> tag" in report.problems[4]
    # batched: 4 + 2 prompts, each call with the judge's options
    assert [len(call["prompts"]) for call in llm.calls] == [4, 2]
    assert all(call["options"]["max_new_tokens"] == 64 and call["options"]["temperature"] == 0.0 for call in llm.calls)
    summary = report.as_dict()
    assert summary == {"n": 6, "mean": 1.8, "parsed": 5, "distribution": {"0": 1, "1": 1, "2": 1, "3": 2},
                       "unparsed": 1, "unparsed_rate": 1 / 6}  # fmt: skip
    assert report.as_dict(cases=True)["cases"][4] == {"score": None, "answer": answers[4], "problem": report.problems[4]}


def test_the_prompt_holds_every_fact_the_rubric_needs():
    llm = FakeLLM("<score>2</score>")
    RubricJudge(llm).judge(EXPLANATIONS[:2], histories=[HISTORY, HISTORY[:1]], items=["Ronin (1998)", "Babe (1995)"],
                           decisions=[True, "No"])  # fmt: skip
    first, second = llm.prompts
    assert "The user's history: Heat (1995); Casino (1995); Fargo (1996)\n" in first
    assert "The item: Ronin (1998)\n" in first and "will the user like the item?): Yes\n" in first
    assert f"The assistant's answer: {EXPLANATIONS[0]}\n" in first
    assert "The user's history: Heat (1995)\n" in second and "The item: Babe (1995)" in second and "): No\n" in second
    for grade in "0123":
        assert f"\n{grade}: " in first  # the four levels of the rubric


@pytest.mark.parametrize(
    ("answer", "grade"),
    [("<score>0</score>", 0), ("Reasoning first.\n<score>3</score>", 3), ("<Score > 1 </ score>", 1),
     ("Format: <score>N</score>. Mine: <score>2</score>", 2),  # a placeholder tag is ignored
     ("<score>2</score> ... so <score>2</score>", 2)],  # the same grade twice is not ambiguous
)  # fmt: skip
def test_strict_parser_reads(answer, grade):
    assert RubricJudge(FakeLLM()).parse(answer) == grade


@pytest.mark.parametrize(
    ("answer", "problem"),
    [("", "no <score>...</score> tag"), ("3", "no <score>...</score> tag"), ("score: 3", "no <score>...</score> tag"),
     ("<score>4</score>", "no <score> tag holds a grade"), ("<score>2.5</score>", "no <score> tag holds a grade"),
     ("<score></score>", "no <score> tag holds a grade"), ("<score>3", "no <score>...</score> tag"),
     ("<score>1</score><score>3</score>", "several different grades: 1, 3")],
)  # fmt: skip
def test_strict_parser_refuses(answer, problem):
    with pytest.raises(ValueError, match=problem.replace(".", r"\.")):
        RubricJudge(FakeLLM()).parse(answer)


def test_custom_template_and_the_papers_lettered_grades():
    template = "History: {history}. Item: {item}. Label: {decision}. Output: {explanation}. Grade A-D as <score>X</score>."
    llm = FakeLLM(["<score>D</score>", "<score>b</score>", "<score>A</score>", "<score>C</score>"])
    judge = RubricJudge(llm, template, labels=("A", "B", "C", "D"))
    report = judge.judge(EXPLANATIONS[:4], **_cases(4))
    assert report.scores == (3, 1, 0, 2) and report.mean == 1.5 and report.levels == 4
    assert llm.prompts[0].startswith("History: Heat (1995); Casino (1995); Fargo (1996). Item: Ronin (1998). Label: Yes.")
    # a judge that repeats a prompt listing every grade is ambiguous, not graded:
    listing = "A. <score>A</score> wrong; B. <score>B</score> poor; C. <score>C</score> ok; D. <score>D</score> good. {explanation}"
    echo = RubricJudge(FakeLLM(lambda prompt: prompt), listing, labels=("A", "B", "C", "D"))
    assert echo.judge(["fine"]).scores == (None,)
    # a template without the other fields needs only the explanations:
    assert RubricJudge(FakeLLM("<score>1</score>"), "Grade: {explanation}").judge(["Yes."]).mean == 1.0


@pytest.mark.parametrize(
    ("template", "problem"),
    [("Grade {answer}", r"unknown field\(s\) \{answer\}"), ("Grade {} and {explanation}", r"unknown field\(s\) \{\}"),
     ("Grade {history}", "must hold {explanation}"), ("Grade {explanation", "does not format"),
     ("   ", "non-empty string")],
)  # fmt: skip
def test_bad_templates_are_named(template, problem):
    with pytest.raises(ValueError, match=problem):
        RubricJudge(FakeLLM(), template)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="generate"):
        RubricJudge(object())
    with pytest.raises(ValueError, match="at least 2 distinct"):
        RubricJudge(FakeLLM(), labels=("A", "a"))
    with pytest.raises(ValueError, match="batch_size"):
        RubricJudge(FakeLLM(), batch_size=0)
    with pytest.raises(TypeError, match="unknown generation option 'max_tokens'"):
        RubricJudge(FakeLLM(), options={"max_tokens": 3})
    judge = RubricJudge(FakeLLM())
    with pytest.raises(ValueError, match=r"template has \{history\}: give `histories`"):
        judge.judge(["Yes."], items=["Ronin (1998)"], decisions=[True])
    with pytest.raises(ValueError, match="got 2 explanations and 1 items"):
        judge.judge(["Yes.", "No."], histories=[HISTORY] * 2, items=["Ronin (1998)"], decisions=[True, True])
    with pytest.raises(ValueError, match="case 1: the explanation must be a non-empty string"):
        judge.judge(["Yes.", "  "], **_cases(2))
    with pytest.raises(ValueError, match="no explanations"):
        judge.judge([])
    with pytest.raises(RuntimeError, match="returned 0 answers for 1 prompts"):
        RubricJudge(type("Mute", (), {"generate": lambda self, prompts, **o: []})()).judge(["Yes."], **_cases(1))


def test_report_checks_itself():
    assert math.isnan(JudgeReport((None,), ("?",), ("no tag",)).mean)
    assert JudgeReport((None,), ("?",), ("no tag",)).as_dict()["mean"] is None
    with pytest.raises(ValueError, match="outside 0..3"):
        JudgeReport((4,), ("<score>4</score>",), (None,))
    with pytest.raises(ValueError, match="either a score or a problem"):
        JudgeReport((1,), ("<score>1</score>",), ("oops",))


@pytest.fixture
def loopback_only(monkeypatch):
    """Fails any connection to an address that is not loopback, for the duration of the test."""
    original = socket.socket.connect
    seen: list[object] = []

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        assert host == "localhost" or ipaddress.ip_address(host).is_loopback, f"non-loopback connection to {address}"
        seen.append(address)
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


def test_the_loopback_guard_stops_other_addresses(loopback_only):
    with pytest.raises(AssertionError, match="non-loopback connection"):
        socket.create_connection(("192.0.2.1", 9), timeout=0.01)  # TEST-NET-1: never sent, the guard fires first
    assert loopback_only == []


def test_the_same_numbers_come_back_through_an_openai_compatible_stub(stub, loopback_only):  # noqa: F811
    pytest.importorskip("openai")
    from darec.llm import OpenAICompatible

    # The stub answers "echo: <prompt>": each explanation carries the grade the judge "gives" it, and the
    # default prompt's placeholder tag (<score>N</score>) is ignored by the parser.
    grades = ["<score>3</score>", "<score>1</score>", "<score>0</score>", "<score>2</score>", "no grade", "<score>3</score>"]
    explanations = [f"{text} {grade}" for text, grade in zip(EXPLANATIONS, grades)]
    backend = OpenAICompatible(MODEL, base_url=stub.base_url, backoff=0.01, max_backoff=0.05, timeout=5.0, progress=False)
    served = RubricJudge(backend, batch_size=4).judge(explanations, **_cases())
    scripted = RubricJudge(FakeLLM(lambda prompt: f"echo: {prompt}"), batch_size=4).judge(explanations, **_cases())
    assert served.scores == (3, 1, 0, 2, None, 3) and served.mean == 1.8
    assert served == scripted  # grades, answers and problems alike
    assert len(stub.bodies) == 6 and all(body["max_tokens"] == 64 and body["temperature"] == 0 for body in stub.bodies)
    assert stub.bodies[0]["messages"][-1]["content"].endswith("where N is 0, 1, 2 or 3.")
    assert loopback_only and all(address[0] == "127.0.0.1" for address in loopback_only)
