"""Profiles written by a language model: the text side of alignment, generated instead of templated.

RLMRec and DaRec describe users and items with profiles a language model writes: what a user
enjoys, judging by the items they liked in training; what an item is and who would like it. This
package builds those prompts, asks any :mod:`darec.llm` backend, reads the answers and keeps them
in a resumable JSON-lines file that a data module can use as user or item text
(``RecDataModule(..., user_profiles="users.jsonl")``):

- :class:`ProfileSource`: the facts of the prompts, from the **training** interactions only;
- :class:`ProfilePrompts`: the prompt templates (:meth:`str.format` text you can replace);
- :class:`ProfileAnswer`: the ``{"summary", "reasoning"}`` answer, read tolerantly
  (:class:`ProfileParseError` when it cannot be);
- :class:`ProfileJob`: the cached, resumable run, which returns a :class:`ProfileReport` (with
  the :class:`ProfileFailure` of every entity that still failed).

The ``darec profiles`` command runs a job from the shell. Nothing of the language-model libraries
is imported until a backend is built.
"""

from darec.profiles.errors import ProfileParseError
from darec.profiles.profile_answer import ProfileAnswer
from darec.profiles.profile_failure import ProfileFailure
from darec.profiles.profile_job import ProfileJob
from darec.profiles.profile_prompts import ProfilePrompts
from darec.profiles.profile_report import ProfileReport
from darec.profiles.profile_source import ProfileSource

__all__ = [
    "ProfileAnswer",
    "ProfileFailure",
    "ProfileJob",
    "ProfileParseError",
    "ProfilePrompts",
    "ProfileReport",
    "ProfileSource",
]
