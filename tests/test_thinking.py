"""Reading a sleep-time reasoning pass, and combining k samples by agreement."""

from __future__ import annotations

from sleepagent.sleep.thinking import Notes, Worked, agree, final_value, learned_lines, read_notes

SAMPLE = """\
Let's go through the text one sentence at a time.
1. The north shelf holds 24 books. North shelf = 24
2. **The south shelf holds 3 times as many.** South shelf = 3 * 24 = 72

FINAL STATE
- North shelf: 24
- **South shelf**: 72 - 28 = 44

Questions a user may ask:
**Q: How many books are on both shelves?**
A: 24 + 44 = 68
Q2: How many more books are on the south shelf? A: 44 - 24 = 20
Q: What colour are the shelves?
"""


def test_a_pass_yields_its_final_state_and_its_answered_questions():
    notes = read_notes(SAMPLE)

    assert notes.results == (
        Worked("North shelf", "24", question=False, text="North shelf: 24"),
        Worked("South shelf", "72 - 28 = 44", question=False, text="South shelf: 72 - 28 = 44"),
        Worked("How many books are on both shelves?", "24 + 44 = 68", question=True),
        Worked("How many more books are on the south shelf?", "44 - 24 = 20", question=True),
    )


def test_a_pass_in_no_readable_shape_concludes_nothing():
    assert read_notes("The shelves hold books. I think the answer depends.").empty


def test_a_results_value_is_its_last_number():
    assert final_value("24 + 44 = 68") == "68"
    assert final_value("$1,250.50 in total") == "1250.5"
    assert final_value("Porto") == "porto"


def notes(*pairs: tuple[str, str]) -> Notes:
    return Notes(tuple(Worked(q, a, question=True) for q, a in pairs))


def test_samples_agree_by_majority_and_an_idea_of_one_sample_is_dropped():
    samples = [
        notes(("How many books are on both shelves?", "68"), ("What is the shelf ratio?", "3")),
        notes(("How many books are on both shelves combined?", "24 + 44 = 68")),
        notes(("How many books on both shelves?", "96")),
    ]
    agreed = agree(samples)

    assert [(a.subject, a.votes, a.seen, a.certain) for a in agreed] == [
        ("How many books are on both shelves?", 2, 3, True)
    ]
    assert agreed[0].others == ("96",)


def test_a_tie_goes_to_the_first_sample_and_is_kept_as_uncertain():
    samples = [notes(("How many are left?", "5")), notes(("How many are left?", "7"))]

    assert learned_lines(agree(samples)) == [
        "Q: How many are left? A: 5 (uncertain: the other workings gave 7)"
    ]


def test_learned_context_holds_the_final_values_not_the_guessed_questions():
    only = read_notes(SAMPLE)
    assert learned_lines(agree([only])) == [
        "Final values:",
        "- North shelf: 24",
        "- South shelf: 72 - 28 = 44",
    ]


def test_without_final_values_the_answered_questions_are_kept():
    answered = notes(("What should Ada pack for Porto?", "a raincoat: rain all week"))
    assert learned_lines(agree([answered])) == [
        "Q: What should Ada pack for Porto? A: a raincoat: rain all week"
    ]


def test_a_markdown_table_of_final_values_is_read_row_by_row():
    table = "FINAL STATE\n| Quantity | Value |\n|---|---|\n| East lot | 14 |\n| West lot | 70 |\n"
    assert [w.line for w in read_notes(table).results] == ["East lot: 14", "West lot: 70"]


def test_the_state_section_ends_where_the_questions_begin():
    text = "FINAL STATE\nEast lot: 14\n3. Likely questions\nStep 3: 14 + 70 = 84\n"
    assert [w.line for w in read_notes(text).results] == ["East lot: 14"]


def test_smaller_k_is_the_first_samples_of_a_larger_k():
    samples = [notes(("How many are left?", v)) for v in ("5", "7", "7", "5", "5")]

    assert [a.result for a in agree(samples[:1])] == ["5"]
    assert [(a.result, a.certain) for a in agree(samples[:3])] == [("7", True)]
    assert [(a.result, a.votes) for a in agree(samples)] == [("5", 3)]


def test_two_results_of_one_sample_are_never_merged_however_alike():
    text = "FINAL STATE\nGiven to the shelter: 20\nShare given to the shelter: 1/12\n"
    assert learned_lines(agree([read_notes(text)])) == [
        "Final values:",
        "- Given to the shelter: 20",
        "- Share given to the shelter: 1/12",
    ]


RESTATED = """\
Okay, I'll go through the material one sentence at a time, updating the values step by step, \
and then write the FINAL STATE and answer the questions.

### Material
Lucia's garden has 3 rows of 14 tomato plants. Each plant gives 6 tomatoes.

### Step 1: Update quantities
1. **Total number of tomato plants:**
   3 rows x 14 plants/row = 42 plants

### Step 2: FINAL STATE
- **Total number of tomato plants:** 42
- **Total number of tomatoes:** 252

### Step 3: Answer the questions
**Q: How many tomatoes does Lucia have?**
   - A: 252 tomatoes

### Final State:
- **Total number of tomato plants:** 42
- **Total number of tomatoes:** 252
"""


def test_a_sentence_that_mentions_the_final_state_does_not_open_it():
    notes = read_notes(RESTATED)

    assert [result.subject for result in notes.results] == [
        "Total number of tomato plants",
        "Total number of tomatoes",
        "How many tomatoes does Lucia have?",
    ], "neither the material nor the working, and the state written twice is read once"
