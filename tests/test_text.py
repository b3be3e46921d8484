"""The shared text rules: citation parsing, marker numbers, invalid-citation removal, marker stripping,
quoted markers defused, and the comparison normaliser."""
from __future__ import annotations

from rag.text import (
    cited_numbers, drop_invalid_citations, marker_numbers, neutralise_markers, normalise, parse_citations,
    strip_markers,
)


def test_adjacent_and_listed_markers():
    parsed = parse_citations("Gallium is controlled [1][2]. Japan joined in 2023 [1, 3].")
    assert parsed == [("Gallium is controlled [1][2].", [1, 2]), ("Japan joined in 2023 [1, 3].", [1, 3])]


def test_marker_after_full_stop_belongs_to_previous_sentence():
    parsed = parse_citations("China imposed controls. [2] Japan objected [1].")
    assert parsed[0][1] == [2]
    assert parsed[1][1] == [1]


def test_ranges_and_no_markers():
    assert marker_numbers("2-4") == [2, 3, 4]
    assert marker_numbers("1; 5") == [1, 5]
    assert cited_numbers("A [2]. B [1-2]. C [2021].") == [2, 1]
    assert parse_citations("No citations here.") == [("No citations here.", [])]
    assert parse_citations("") == []


def test_out_of_range_citations_are_removed():
    assert drop_invalid_citations("A fact [7]. Another [1][7]. Third [1, 7, 2].", {1, 2}) == \
        "A fact. Another [1]. Third [1][2]."


def test_strip_markers_takes_the_space_before_them_and_leaves_other_brackets():
    assert strip_markers("It rose [2]. Then  fell [1, 3][4].") == "It rose. Then fell."
    assert strip_markers("In [2021] it rose [sic].") == "In [2021] it rose [sic]."
    assert strip_markers("") == "" and strip_markers("[1]") == ""


def test_document_markers_are_neutralised_without_moving_offsets():
    text = "As noted [2], and [1-3]."
    assert neutralise_markers(text) == "As noted (2), and (1-3)."
    assert len(neutralise_markers(text)) == len(text)


def test_normalise_folds_width_quotes_dashes_case_and_whitespace():
    assert normalise("Ｇａｌｌｉｕｍ  “RARE” metals\u00a0–\nSTRASSE") == 'gallium "rare" metals - strasse'
    assert normalise("") == ""
