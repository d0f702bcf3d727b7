"""The prompts that ask a language model for a user or an item profile: replaceable templates."""

from __future__ import annotations

import dataclasses
import re
import string
from pathlib import Path
from typing import Any

from darec.profiles.profile_source import ProfileSource

__all__ = ["ProfilePrompts"]

#: The answer format every default prompt asks for (braces doubled for :meth:`str.format`).
ANSWER_FORMAT = (
    "Answer with one JSON object and nothing else, in this form:\n"
    '{{"summary": "<the profile>", "reasoning": "<one sentence: which facts above it rests on>"}}'
)

USER_TEMPLATE = (
    "You write short profiles of the users of a recommender system.\n"
    "{demographics}\n"
    "This user liked {num_items} {noun}. Here are {num_listed} of them, {order}:\n"
    "{items}\n\n"
    "In two or three sentences, describe what this user enjoys and avoids: genres, themes, periods, tone. "
    "Do not repeat the list of titles.\n" + ANSWER_FORMAT
)

ITEM_TEMPLATE = (
    "You write short profiles of the items of a recommender system.\n"
    "The item: {description}\n"
    "{audience}\n\n"
    "In two or three sentences, describe this item and the kind of user who would enjoy it.\n" + ANSWER_FORMAT
)

#: The fields each template may use.
USER_FIELDS = ("demographics", "items", "num_items", "num_listed", "noun", "order", "top_genres")
ITEM_FIELDS = ("name", "description", "genres", "audience", "num_users", "noun")

_ORDER_WORDS = {"rating": "highest rated first", "recent": "most recent first"}


@dataclasses.dataclass(frozen=True)
class ProfilePrompts:
    """Builds the prompt of every user and item from a :class:`~darec.profiles.ProfileSource`.

    The prompts are :meth:`str.format` templates (literal braces doubled: ``{{`` and ``}}``) with
    these fields:

    * user prompts: ``{demographics}`` (``"A 24-year-old male user whose occupation is
      technician."``, or ``"A user."``), ``{items}`` (one line per listed **training** item:
      ``"- Heat (1995); genres: Action, Crime; rated 5"``, the genres and rating when known),
      ``{num_items}`` (all the user's training items), ``{num_listed}`` (at most
      ``max_items``), ``{noun}`` (``"movies"`` or ``"items"``), ``{order}`` (``"highest rated
      first"``) and ``{top_genres}`` (the five most frequent genres of the training items);
    * item prompts: ``{name}`` (``"Heat (1995)"``), ``{description}`` (its text from the
      metadata: title, genres, other fields), ``{genres}``, ``{audience}`` (who interacted with
      it in training: ``"In training, 42 users liked it: mostly male (71%), most often aged
      25-34 (38%); frequent occupations: student, programmer."``, empty when
      ``audience=False``), ``{num_users}`` and ``{noun}``.

    The default prompts ask for the JSON object ``{"summary": ..., "reasoning": ...}`` that
    :meth:`ProfileAnswer.parse <darec.profiles.ProfileAnswer.parse>` reads; a template of your
    own should too. An unknown field is refused when the object is built. Everything that
    changes a prompt (the templates and the settings below) is part of :meth:`fingerprint`, so a
    :class:`~darec.profiles.ProfileJob` writes the profiles again when it changes.

    Args:
        user_template (str): the template of user prompts. (default: :data:`USER_TEMPLATE`)
        item_template (str): the template of item prompts. (default: :data:`ITEM_TEMPLATE`)
        max_items (int): the most training items listed per user. (default: ``20``)
        order (str): which of a user's items are listed first: ``"rating"`` (highest rated, then
            most recent) or ``"recent"`` (most recent, then highest rated). (default: ``"rating"``)
        audience (bool): describe in item prompts the users who interacted with the item in
            training. (default: :obj:`True`)

    Example:
        >>> from darec.data import InteractionLog, Interactions
        >>> from darec.profiles.profile_source import ProfileSource
        >>> log = InteractionLog(["u", "u", "u"], ["a", "b", "c"], ratings=[5, 4, 4],
        ...                      item_info={"a": {"title": "Heat", "year": 1995, "genres": "Crime"},
        ...                                 "b": {"title": "Big", "genres": "Comedy"}, "c": {"title": "Up"}})
        >>> data = Interactions(1, 3, train=[[0, 0], [0, 1]], test=[[0, 2]], user_ids=["u"], item_ids=["a", "b", "c"])
        >>> prompts = ProfilePrompts(user_template="{demographics} Liked, {order}:\\n{items}")
        >>> print(prompts.prompt(ProfileSource(data, log), "user", 0))
        A user. Liked, highest rated first:
        - Heat (1995); genres: Crime; rated 5
        - Big; genres: Comedy; rated 4
        >>> ProfilePrompts(item_template="{title}")
        Traceback (most recent call last):
        ...
        ValueError: the item template uses the unknown field {title}; its fields are name, description, genres, audience, num_users, noun
    """

    user_template: str = USER_TEMPLATE
    item_template: str = ITEM_TEMPLATE
    max_items: int = 20
    order: str = "rating"
    audience: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_items, bool) or not isinstance(self.max_items, int) or self.max_items < 1:
            raise ValueError(f"max_items must be a positive integer, got {self.max_items!r}")
        if self.order not in _ORDER_WORDS:
            raise ValueError(f"order must be 'rating' or 'recent', got {self.order!r}")
        _check_template(self.user_template, USER_FIELDS, "user")
        _check_template(self.item_template, ITEM_FIELDS, "item")

    @classmethod
    def from_file(cls, path: str | Path, entity: str, **kwargs: Any) -> ProfilePrompts:
        """Prompts whose ``entity`` template is the text of the file ``path`` (UTF-8); ``kwargs`` as the class."""
        text = Path(path).expanduser().read_text(encoding="utf-8")
        if entity not in ("user", "item"):
            raise ValueError(f"entity must be 'user' or 'item', got {entity!r}")
        return cls(**{f"{entity}_template": text}, **kwargs)

    def template(self, entity: str) -> str:
        """The template of ``entity`` (``"user"`` or ``"item"``)."""
        if entity not in ("user", "item"):
            raise ValueError(f"entity must be 'user' or 'item', got {entity!r}")
        return self.user_template if entity == "user" else self.item_template

    def fingerprint(self, entity: str) -> dict[str, Any]:
        """Everything that shapes the prompts of ``entity``: its template and the settings it uses."""
        settings: dict[str, Any] = {"template": self.template(entity)}
        if entity == "user":
            settings.update(max_items=self.max_items, order=self.order)
        else:
            settings.update(audience=self.audience)
        return settings

    def prompt(self, source: ProfileSource, entity: str, index: int) -> str:
        """The prompt of user or item ``index`` of ``source``."""
        fields = self.user_fields(source, index) if entity == "user" else self.item_fields(source, index)
        text = self.template(entity).format(**fields)
        return re.sub(r"\n{3,}", "\n\n", text).strip()

    def user_fields(self, source: ProfileSource, user: int) -> dict[str, Any]:
        """The template fields of ``user``, from its training items only."""
        liked = source.liked_items(user, self.order)
        listed = liked[: self.max_items]
        lines = []
        for item in listed:
            parts = [source.item_name(item)]
            genres = source.item_genres(item)
            if genres:
                parts.append("genres: " + ", ".join(genres))
            rating = source.rating(user, item)
            if rating is not None:
                parts.append(f"rated {_number(rating)}")
            lines.append("- " + "; ".join(parts))
        top = source.template.top_genres((source.item_genres(item) for item in liked), 5)
        return {
            "demographics": source.user_description(user),
            "items": "\n".join(lines),
            "num_items": len(liked),
            "num_listed": len(listed),
            "noun": source.template.item_noun.lower(),
            "order": _ORDER_WORDS[self.order],
            "top_genres": ", ".join(top) if top else "unknown",
        }

    def item_fields(self, source: ProfileSource, item: int) -> dict[str, Any]:
        """The template fields of ``item``, its audience from the training interactions only."""
        genres = source.item_genres(item)
        audience = source.item_audience(item) if self.audience else None
        return {
            "name": source.item_name(item),
            "description": source.item_description(item),
            "genres": ", ".join(genres) if genres else "unknown",
            "audience": _audience_sentence(audience) if audience is not None else "",
            "num_users": len(source.item_users(item)),
            "noun": source.template.item_noun.lower(),
        }


def _check_template(template: str, fields: tuple[str, ...], entity: str) -> None:
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"the {entity} template is empty")
    try:
        used = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise ValueError(f"the {entity} template is not a valid str.format template ({err}); double literal braces: {{{{ }}}}") from None
    for name in used:
        base = re.split(r"[.\[]", name, maxsplit=1)[0]
        if base not in fields:
            shown = "{" + name + "}" if name else "{} (a positional field)"
            raise ValueError(f"the {entity} template uses the unknown field {shown}; its fields are {', '.join(fields)}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _share(counter: Any, total: int) -> tuple[str, int]:
    name, count = counter.most_common(1)[0]
    return name, round(100 * count / total)


def _audience_sentence(audience: dict[str, Any]) -> str:
    users = audience["users"]
    if users == 0:
        return "No user interacted with it in training."
    parts = []
    if audience["gender"]:
        name, share = _share(audience["gender"], sum(audience["gender"].values()))
        parts.append(f"mostly {name} ({share}%)")
    if audience["age"]:
        name, share = _share(audience["age"], sum(audience["age"].values()))
        parts.append(f"most often aged {name} ({share}%)")
    sentence = f"In training, {users} user{'s' if users != 1 else ''} liked it"
    sentence += (": " + ", ".join(parts)) if parts else ""
    if audience["occupation"]:
        common = [name for name, _ in audience["occupation"].most_common(2)]
        sentence += f"{';' if parts else ':'} frequent occupations: {', '.join(common)}"
    return sentence + "."
