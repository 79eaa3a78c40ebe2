"""A seeded generator of stateful math word problems, written for this project.

Each problem is a short story about two holders of some quantity (a person and a
sibling, two shelves, two tanks...). The story sets both amounts, then changes
them step by step; the last sentence asks a question. All sentences but the
last are the *context*, the last is the *question*, as in Stateful GSM-Symbolic.

Difficulty: ``base`` has one change after the set-up, ``p1`` two and ``p2``
three (more clauses, more steps), echoing GSM-Symbolic's P1 and P2. Every
context supports ten different questions (:data:`QUESTION_KINDS`),
each with its own exact answer, for the multi-query experiment.

Problems carry their steps as data (:attr:`Problem.steps`), so a test can
recompute every answer with code of its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "OP_KINDS",
    "QUESTION_KINDS",
    "TEMPLATES",
    "Level",
    "Problem",
    "Step",
    "Template",
    "generate",
]


class Level(Enum):
    """Difficulty: how many changes follow the set-up."""

    BASE = "base"
    P1 = "p1"
    P2 = "p2"

    @property
    def changes(self) -> int:
        """Changes after the two set-up sentences."""
        return {Level.BASE: 1, Level.P1: 2, Level.P2: 3}[self]


OP_KINDS = ("add_a", "sub_a", "mul_a", "add_b", "sub_b", "move_ab", "move_ba")
"""Changes a story may contain after its set-up."""

QUESTION_KINDS = (
    "a",
    "b",
    "total",
    "difference",
    "total_after_gift",
    "a_doubled",
    "b_doubled",
    "a_after_gift",
    "b_after_gift",
    "total_tripled",
)
"""What a question may ask about the final state."""


@dataclass(frozen=True)
class Step:
    """One sentence of a story as data.

    Attributes:
        kind: ``start_a``, ``b_plus``, ``b_times``, or one of :data:`OP_KINDS`.
        amount: The number the sentence states.
        text: The sentence.

    """

    kind: str
    amount: int
    text: str


@dataclass(frozen=True, kw_only=True)
class Template:
    """The wording of one kind of story.

    Attributes:
        name: Identifier of the template.
        a: The first holder (``{a}`` in phrases).
        b: The second holder.
        unit: What is counted, plural.
        phrases: A sentence per step kind, with ``{a}``, ``{b}``, ``{unit}`` and ``{n}``.
        questions: A question per question kind (same fields, ``{n}`` for the gift).

    """

    name: str
    a: str
    b: str
    unit: str
    phrases: dict[str, str]
    questions: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One generated problem and every question its context supports.

    Attributes:
        id: Stable identifier (template, level, seed, index).
        template: The template's name.
        level: Difficulty.
        steps: The context's sentences as data, in order.
        questions: ``(kind, text, answer)`` for every question kind; the first is the main one.
        gift: The number of extra items in the "receive ... more" questions.

    """

    id: str
    template: str
    level: Level
    steps: tuple[Step, ...]
    questions: tuple[tuple[str, str, int], ...]
    gift: int

    @property
    def context(self) -> str:
        """All sentences but the question."""
        return " ".join(step.text for step in self.steps)

    @property
    def question(self) -> str:
        """The main question (the story's last sentence)."""
        return self.questions[0][1]

    @property
    def answer(self) -> int:
        """The main question's exact answer."""
        return self.questions[0][2]

    @property
    def text(self) -> str:
        """The whole problem: context, then question."""
        return f"{self.context} {self.question}"


def _questions(a: str, b: str, unit: str) -> dict[str, str]:
    return {
        "a": f"How many {unit} does {a} have now?",
        "b": f"How many {unit} does {b} have now?",
        "total": f"How many {unit} do {a} and {b} have together now?",
        "difference": f"What is the difference between the {unit} of {a} and of {b} now?",
        "total_after_gift": (
            f"If {a} and {b} each receive {{n}} more {unit}, how many {unit} will they have "
            "together?"
        ),
        "a_doubled": f"What is twice the number of {unit} {a} has now?",
        "b_doubled": f"What is twice the number of {unit} {b} has now?",
        "a_after_gift": f"If {a} receives {{n}} more {unit}, how many {unit} will {a} have?",
        "b_after_gift": f"If {b} receives {{n}} more {unit}, how many {unit} will {b} have?",
        "total_tripled": f"What is three times the number of {unit} {a} and {b} have together?",
    }


def _template(name: str, a: str, b: str, unit: str, **phrases: str) -> Template:
    return Template(
        name=name, a=a, b=b, unit=unit, phrases=phrases, questions=_questions(a, b, unit)
    )


# The phrases say the same operation in each template's own words; {n} is the amount.
TEMPLATES: tuple[Template, ...] = (
    _template(
        "marbles",
        "Mia",
        "her brother Leo",
        "marbles",
        start_a="Mia has {n} marbles.",
        b_plus="Her brother Leo has {n} more marbles than Mia.",
        b_times="Her brother Leo has {n} times as many marbles as Mia.",
        add_a="Mia wins {n} marbles in a game.",
        sub_a="Mia loses {n} marbles through a hole in her bag.",
        mul_a="Mia's uncle makes her collection {n} times as large.",
        add_b="Leo finds {n} marbles under the sofa.",
        sub_b="Leo trades away {n} marbles.",
        move_ab="Mia gives Leo {n} marbles.",
        move_ba="Leo gives Mia {n} marbles.",
    ),
    _template(
        "library",
        "the north shelf",
        "the south shelf",
        "books",
        start_a="The north shelf holds {n} books.",
        b_plus="The south shelf holds {n} more books than the north shelf.",
        b_times="The south shelf holds {n} times as many books as the north shelf.",
        add_a="A librarian adds {n} new books to the north shelf.",
        sub_a="Readers borrow {n} books from the north shelf.",
        mul_a="After a donation the north shelf holds {n} times as many books as before.",
        add_b="{n} returned books are put on the south shelf.",
        sub_b="{n} worn books are removed from the south shelf.",
        move_ab="{n} books are moved from the north shelf to the south shelf.",
        move_ba="{n} books are moved from the south shelf to the north shelf.",
    ),
    _template(
        "bakery",
        "the morning tray",
        "the evening tray",
        "rolls",
        start_a="The morning tray has {n} rolls.",
        b_plus="The evening tray has {n} more rolls than the morning tray.",
        b_times="The evening tray has {n} times as many rolls as the morning tray.",
        add_a="The baker puts {n} fresh rolls on the morning tray.",
        sub_a="Customers buy {n} rolls from the morning tray.",
        mul_a="A second batch makes the morning tray {n} times as full as before.",
        add_b="The baker adds {n} rolls to the evening tray.",
        sub_b="{n} rolls from the evening tray are packed for a party.",
        move_ab="{n} rolls are shifted from the morning tray to the evening tray.",
        move_ba="{n} rolls are shifted from the evening tray to the morning tray.",
    ),
    _template(
        "aquarium",
        "the small tank",
        "the large tank",
        "fish",
        start_a="The small tank contains {n} fish.",
        b_plus="The large tank contains {n} more fish than the small tank.",
        b_times="The large tank contains {n} times as many fish as the small tank.",
        add_a="{n} fish are born in the small tank.",
        sub_a="{n} fish are sold from the small tank.",
        mul_a="The fish in the small tank breed until there are {n} times as many.",
        add_b="The keeper buys {n} fish for the large tank.",
        sub_b="{n} fish are taken out of the large tank for a school.",
        move_ab="{n} fish are moved from the small tank to the large tank.",
        move_ba="{n} fish are moved from the large tank to the small tank.",
    ),
    _template(
        "stickers",
        "Noah",
        "his friend Ava",
        "stickers",
        start_a="Noah owns {n} stickers.",
        b_plus="His friend Ava owns {n} more stickers than Noah.",
        b_times="His friend Ava owns {n} times as many stickers as Noah.",
        add_a="Noah buys a pack of {n} stickers.",
        sub_a="Noah uses {n} stickers on his notebook.",
        mul_a="Noah's sticker count becomes {n} times what it was after a birthday.",
        add_b="Ava gets {n} stickers from her teacher.",
        sub_b="Ava puts {n} stickers on her bike.",
        move_ab="Noah hands {n} stickers to Ava.",
        move_ba="Ava hands {n} stickers to Noah.",
    ),
    _template(
        "orchard",
        "the red basket",
        "the green basket",
        "apples",
        start_a="The red basket has {n} apples.",
        b_plus="The green basket has {n} more apples than the red basket.",
        b_times="The green basket has {n} times as many apples as the red basket.",
        add_a="A picker drops {n} more apples into the red basket.",
        sub_a="{n} bruised apples are thrown out of the red basket.",
        mul_a="By noon the red basket has {n} times as many apples as it had.",
        add_b="{n} apples are added to the green basket.",
        sub_b="{n} apples from the green basket are used for a pie.",
        move_ab="{n} apples are moved from the red basket into the green basket.",
        move_ba="{n} apples are moved from the green basket into the red basket.",
    ),
    _template(
        "parking",
        "the east lot",
        "the west lot",
        "cars",
        start_a="The east lot has {n} cars parked.",
        b_plus="The west lot has {n} more cars parked than the east lot.",
        b_times="The west lot has {n} times as many cars parked as the east lot.",
        add_a="{n} more cars arrive at the east lot.",
        sub_a="{n} cars leave the east lot.",
        mul_a="During a concert the east lot fills to {n} times as many cars.",
        add_b="{n} cars pull into the west lot.",
        sub_b="{n} cars drive out of the west lot.",
        move_ab="{n} cars are redirected from the east lot to the west lot.",
        move_ba="{n} cars are redirected from the west lot to the east lot.",
    ),
    _template(
        "stamps",
        "Grandpa Joe",
        "Aunt Rosa",
        "stamps",
        start_a="Grandpa Joe has {n} stamps in his album.",
        b_plus="Aunt Rosa has {n} more stamps than Grandpa Joe.",
        b_times="Aunt Rosa has {n} times as many stamps as Grandpa Joe.",
        add_a="Grandpa Joe buys {n} stamps at a fair.",
        sub_a="Grandpa Joe sells {n} stamps to a collector.",
        mul_a="An inheritance makes Grandpa Joe's album {n} times as large.",
        add_b="Aunt Rosa receives {n} stamps in the mail.",
        sub_b="Aunt Rosa donates {n} stamps to a museum.",
        move_ab="Grandpa Joe gives Aunt Rosa {n} stamps.",
        move_ba="Aunt Rosa gives Grandpa Joe {n} stamps.",
    ),
    _template(
        "farm",
        "the upper field",
        "the lower field",
        "sheep",
        start_a="The upper field has {n} sheep.",
        b_plus="The lower field has {n} more sheep than the upper field.",
        b_times="The lower field has {n} times as many sheep as the upper field.",
        add_a="{n} lambs join the flock in the upper field.",
        sub_a="{n} sheep wander away from the upper field.",
        mul_a="By autumn the upper field has {n} times as many sheep.",
        add_b="The farmer buys {n} sheep for the lower field.",
        sub_b="{n} sheep are sold from the lower field.",
        move_ab="The dog herds {n} sheep from the upper field to the lower field.",
        move_ba="The dog herds {n} sheep from the lower field to the upper field.",
    ),
    _template(
        "warehouse",
        "bay A",
        "bay B",
        "crates",
        start_a="Bay A stores {n} crates.",
        b_plus="Bay B stores {n} more crates than bay A.",
        b_times="Bay B stores {n} times as many crates as bay A.",
        add_a="A truck unloads {n} crates into bay A.",
        sub_a="{n} crates are shipped out of bay A.",
        mul_a="After the holiday rush bay A stores {n} times as many crates.",
        add_b="{n} crates are delivered to bay B.",
        sub_b="{n} crates are loaded from bay B onto a train.",
        move_ab="A forklift moves {n} crates from bay A to bay B.",
        move_ba="A forklift moves {n} crates from bay B to bay A.",
    ),
    _template(
        "coins",
        "Priya",
        "her cousin Sam",
        "coins",
        start_a="Priya has {n} coins in her piggy bank.",
        b_plus="Her cousin Sam has {n} more coins than Priya.",
        b_times="Her cousin Sam has {n} times as many coins as Priya.",
        add_a="Priya saves {n} more coins.",
        sub_a="Priya spends {n} coins on a snack.",
        mul_a="Priya's grandmother multiplies her savings, making them {n} times as many coins.",
        add_b="Sam earns {n} coins for chores.",
        sub_b="Sam spends {n} coins at the arcade.",
        move_ab="Priya lends Sam {n} coins.",
        move_ba="Sam lends Priya {n} coins.",
    ),
    _template(
        "garden",
        "the front bed",
        "the back bed",
        "tulips",
        start_a="The front bed has {n} tulips.",
        b_plus="The back bed has {n} more tulips than the front bed.",
        b_times="The back bed has {n} times as many tulips as the front bed.",
        add_a="The gardener plants {n} more tulips in the front bed.",
        sub_a="Rabbits eat {n} tulips in the front bed.",
        mul_a="In spring the front bed has {n} times as many tulips as before.",
        add_b="{n} tulips are planted in the back bed.",
        sub_b="{n} tulips are cut from the back bed for a vase.",
        move_ab="{n} tulips are transplanted from the front bed to the back bed.",
        move_ba="{n} tulips are transplanted from the back bed to the front bed.",
    ),
    _template(
        "school",
        "class 4A",
        "class 4B",
        "pencils",
        start_a="Class 4A has {n} pencils.",
        b_plus="Class 4B has {n} more pencils than class 4A.",
        b_times="Class 4B has {n} times as many pencils as class 4A.",
        add_a="The school gives class 4A {n} new pencils.",
        sub_a="Class 4A breaks {n} pencils.",
        mul_a="A sponsor leaves class 4A with {n} times as many pencils.",
        add_b="Class 4B receives {n} pencils.",
        sub_b="Class 4B loses {n} pencils.",
        move_ab="Class 4A lends {n} pencils to class 4B.",
        move_ba="Class 4B lends {n} pencils to class 4A.",
    ),
    _template(
        "hotel",
        "the first floor",
        "the second floor",
        "guests",
        start_a="The first floor has {n} guests.",
        b_plus="The second floor has {n} more guests than the first floor.",
        b_times="The second floor has {n} times as many guests as the first floor.",
        add_a="{n} guests check in on the first floor.",
        sub_a="{n} guests check out from the first floor.",
        mul_a="During a conference the first floor holds {n} times as many guests.",
        add_b="{n} guests arrive on the second floor.",
        sub_b="{n} guests leave the second floor.",
        move_ab="{n} guests move from the first floor to the second floor.",
        move_ba="{n} guests move from the second floor to the first floor.",
    ),
    _template(
        "shop",
        "the store",
        "the warehouse",
        "lamps",
        start_a="The store has {n} lamps in stock.",
        b_plus="The warehouse has {n} more lamps than the store.",
        b_times="The warehouse has {n} times as many lamps as the store.",
        add_a="The store receives a shipment of {n} lamps.",
        sub_a="The store sells {n} lamps.",
        mul_a="Before the sale the store stocks up to {n} times as many lamps.",
        add_b="The warehouse gets {n} lamps from the factory.",
        sub_b="The warehouse sends {n} lamps back as faulty.",
        move_ab="The store returns {n} lamps to the warehouse.",
        move_ba="The warehouse sends {n} lamps to the store.",
    ),
    _template(
        "birds",
        "the oak",
        "the pine",
        "birds",
        start_a="The oak has {n} birds on it.",
        b_plus="The pine has {n} more birds on it than the oak.",
        b_times="The pine has {n} times as many birds on it as the oak.",
        add_a="{n} birds land on the oak.",
        sub_a="{n} birds fly away from the oak.",
        mul_a="At dusk the oak has {n} times as many birds as before.",
        add_b="{n} birds land on the pine.",
        sub_b="{n} birds fly away from the pine.",
        move_ab="{n} birds fly from the oak to the pine.",
        move_ba="{n} birds fly from the pine to the oak.",
    ),
    _template(
        "cards",
        "Omar",
        "his sister Lina",
        "cards",
        start_a="Omar has {n} trading cards.",
        b_plus="His sister Lina has {n} more trading cards than Omar.",
        b_times="His sister Lina has {n} times as many trading cards as Omar.",
        add_a="Omar opens a booster with {n} cards.",
        sub_a="Omar trades away {n} cards.",
        mul_a="A lucky week leaves Omar with {n} times as many cards.",
        add_b="Lina wins {n} cards at a tournament.",
        sub_b="Lina gives {n} cards to a classmate.",
        move_ab="Omar gives Lina {n} cards.",
        move_ba="Lina gives Omar {n} cards.",
    ),
    _template(
        "bus",
        "the red bus",
        "the blue bus",
        "passengers",
        start_a="The red bus carries {n} passengers.",
        b_plus="The blue bus carries {n} more passengers than the red bus.",
        b_times="The blue bus carries {n} times as many passengers as the red bus.",
        add_a="At the next stop {n} passengers board the red bus.",
        sub_a="At the next stop {n} passengers get off the red bus.",
        mul_a="At the stadium the red bus fills to {n} times as many passengers.",
        add_b="{n} passengers board the blue bus.",
        sub_b="{n} passengers get off the blue bus.",
        move_ab="{n} passengers switch from the red bus to the blue bus.",
        move_ba="{n} passengers switch from the blue bus to the red bus.",
    ),
    _template(
        "jars",
        "the honey jar shelf",
        "the jam jar shelf",
        "jars",
        start_a="The honey jar shelf holds {n} jars.",
        b_plus="The jam jar shelf holds {n} more jars than the honey jar shelf.",
        b_times="The jam jar shelf holds {n} times as many jars as the honey jar shelf.",
        add_a="The grocer stacks {n} more jars on the honey jar shelf.",
        sub_a="Shoppers take {n} jars from the honey jar shelf.",
        mul_a="After restocking the honey jar shelf holds {n} times as many jars.",
        add_b="{n} jars are added to the jam jar shelf.",
        sub_b="{n} jars are sold from the jam jar shelf.",
        move_ab="{n} jars are moved from the honey jar shelf to the jam jar shelf.",
        move_ba="{n} jars are moved from the jam jar shelf to the honey jar shelf.",
    ),
    _template(
        "toys",
        "the toy box",
        "the closet",
        "toys",
        start_a="The toy box holds {n} toys.",
        b_plus="The closet holds {n} more toys than the toy box.",
        b_times="The closet holds {n} times as many toys as the toy box.",
        add_a="After a birthday {n} toys go into the toy box.",
        sub_a="{n} toys from the toy box are given to charity.",
        mul_a="Over the holidays the toy box ends up with {n} times as many toys.",
        add_b="{n} toys are stored in the closet.",
        sub_b="{n} broken toys are thrown out of the closet.",
        move_ab="{n} toys are put away from the toy box into the closet.",
        move_ba="{n} toys are taken from the closet into the toy box.",
    ),
    _template(
        "bikes",
        "the city rack",
        "the park rack",
        "bikes",
        start_a="The city rack has {n} bikes.",
        b_plus="The park rack has {n} more bikes than the city rack.",
        b_times="The park rack has {n} times as many bikes as the city rack.",
        add_a="Riders return {n} bikes to the city rack.",
        sub_a="Riders rent {n} bikes from the city rack.",
        mul_a="After a delivery the city rack has {n} times as many bikes.",
        add_b="{n} bikes are docked at the park rack.",
        sub_b="{n} bikes are rented from the park rack.",
        move_ab="A van carries {n} bikes from the city rack to the park rack.",
        move_ba="A van carries {n} bikes from the park rack to the city rack.",
    ),
    _template(
        "eggs",
        "the white carton",
        "the brown carton",
        "eggs",
        start_a="The white carton has {n} eggs.",
        b_plus="The brown carton has {n} more eggs than the white carton.",
        b_times="The brown carton has {n} times as many eggs as the white carton.",
        add_a="The hens lay {n} eggs that go into the white carton.",
        sub_a="The cook uses {n} eggs from the white carton.",
        mul_a="Market day leaves the white carton with {n} times as many eggs.",
        add_b="{n} eggs are placed in the brown carton.",
        sub_b="{n} eggs from the brown carton are boiled.",
        move_ab="{n} eggs are moved from the white carton to the brown carton.",
        move_ba="{n} eggs are moved from the brown carton to the white carton.",
    ),
)


def _final(steps: tuple[Step, ...]) -> tuple[int, int]:
    """The two holders' amounts after every step."""
    a = b = 0
    for step in steps:
        n = step.amount
        a, b = _APPLY[step.kind](a, b, n)
    return a, b


_APPLY: dict[str, Callable[[int, int, int], tuple[int, int]]] = {
    "start_a": lambda a, b, n: (n, b),
    "b_plus": lambda a, b, n: (a, a + n),
    "b_times": lambda a, b, n: (a, a * n),
    "add_a": lambda a, b, n: (a + n, b),
    "sub_a": lambda a, b, n: (a - n, b),
    "mul_a": lambda a, b, n: (a * n, b),
    "add_b": lambda a, b, n: (a, b + n),
    "sub_b": lambda a, b, n: (a, b - n),
    "move_ab": lambda a, b, n: (a - n, b + n),
    "move_ba": lambda a, b, n: (a + n, b - n),
}


def _amount(rng: random.Random, kind: str, a: int, b: int) -> int | None:
    """A number for a change of this kind that keeps both amounts positive, or None."""
    if kind in ("add_a", "add_b"):
        return rng.randint(2, 30)
    if kind == "mul_a":
        return rng.randint(2, 4)
    held = {"sub_a": a, "move_ab": a, "sub_b": b, "move_ba": b}[kind]
    return rng.randint(1, held - 1) if held >= 2 else None


def _answers(a: int, b: int, gift: int) -> dict[str, int]:
    return {
        "a": a,
        "b": b,
        "total": a + b,
        "difference": abs(a - b),
        "total_after_gift": a + b + 2 * gift,
        "a_doubled": 2 * a,
        "b_doubled": 2 * b,
        "a_after_gift": a + gift,
        "b_after_gift": b + gift,
        "total_tripled": 3 * (a + b),
    }


def generate(
    n: int,
    *,
    seed: int = 0,
    level: Level = Level.BASE,
    templates: tuple[Template, ...] = TEMPLATES,
) -> list[Problem]:
    """``n`` problems, the same ones for the same arguments.

    Templates are used in turn; all numbers come from ``random.Random(seed)``.
    Each problem's main question (its last sentence) is drawn from its question
    kinds; :attr:`Problem.questions` lists it first, then the others.
    """
    rng = random.Random(seed)
    problems: list[Problem] = []
    for index in range(n):
        template = templates[index % len(templates)]
        problems.append(
            _problem(rng, template, level, f"{template.name}-{level.value}-{seed}-{index}")
        )
    return problems


def _problem(rng: random.Random, template: Template, level: Level, id_: str) -> Problem:
    def step(kind: str, amount: int) -> Step:
        return Step(kind, amount, template.phrases[kind].format(n=amount))

    start = rng.randint(5, 40)
    second = rng.choice(("b_plus", "b_times"))
    steps = [
        step("start_a", start),
        step(second, rng.randint(2, 20) if second == "b_plus" else rng.randint(2, 3)),
    ]
    while len(steps) < 2 + level.changes:
        a, b = _final(tuple(steps))
        kind = rng.choice(OP_KINDS)
        amount = _amount(rng, kind, a, b)
        if amount is not None:
            steps.append(step(kind, amount))
    a, b = _final(tuple(steps))
    gift = rng.randint(2, 15)
    answers = _answers(a, b, gift)
    kinds = list(QUESTION_KINDS)
    main = rng.choice(kinds)
    kinds.remove(main)
    ordered = [main, *kinds]
    questions = tuple(
        (kind, template.questions[kind].format(n=gift), answers[kind]) for kind in ordered
    )
    return Problem(
        id=id_,
        template=template.name,
        level=level,
        steps=tuple(steps),
        questions=questions,
        gift=gift,
    )
