"""Ordered relations a faithful sentence keeps: which number goes with which noun ("50 ml of solution"),
which role with which name ("Mayor Ingrid Solberg"), which name does what ("the Supplier may terminate"),
the time of day (a.m. or p.m.), and any condition it states ("if the Supplier raises its prices").
Each check speaks only when the passage binds the word the other way: a word the passage never binds
is left to the coverage check (rag/support.py).

Example: ``relation_problems(read("Mix 500 ml of solution."), [read("Mix 50 ml of solution and 500 ml of water.")])``
→ ["the passage gives 50 for 'solution', not 500"]
"""
from __future__ import annotations

import re

from . import lexicon as lx
from .claims import Reading, Word, _number_key, stem

# A condition the sentence states: a claim of its own that the window must cover.
CONDITION = re.compile(r"\b(?:if|unless|provided that|providing that|as long as|on condition that|only when)\b",
                       re.IGNORECASE)
_CONDITION_END = re.compile(r"[,;:()]|\b(?:then|but|while|whereas|although|though)\b", re.IGNORECASE)
_MERIDIEM = re.compile(r"\d\s*([ap])\.?\s?m\b\.?", re.IGNORECASE)
# What may stand between a name and its role: "Tomas Reyes, the chief engineer".
_NAME_THEN_ROLE = re.compile(r"^,?\s*(?:(?:the|a|an|its|their|our|his|her)\s+)?(?:[a-z-]+\s+)?$")
_ROLE_THEN_NAME = re.compile(r"^,?\s*$")
_PUNCTUATION = re.compile(r"[,;:.()!?\[\]]")
_CONTEXT_AFTER = 2  # content words after a number that it counts or describes ("500 ml of warm water")


def relation_problems(claim: Reading, window: list[Reading]) -> list[str]:
    """Numbers, roles and names the window binds differently from the claim, and a time of day it gives
    the other way round."""
    return (_numbers_bound(claim, window) + _roles_bound(claim, window) + _names_linked(claim, window)
            + _subjects_swapped(claim, window) + _meridiem(claim, window))


def bound_elsewhere(claim: Reading, passage: list[Reading]) -> list[str]:
    """Numbers and roles the whole passage binds to other words than the claim does: "losartan 10 mg"
    where one sentence gives lisinopril 10 mg and another losartan 50 mg."""
    return _numbers_bound(claim, passage) + _roles_bound(claim, passage)


def condition_spans(claim: Reading) -> list[tuple[int, int]]:
    """Char spans of the claim's conditions ("if the Customer fails to pay")."""
    spans = []
    for match in CONDITION.finditer(claim.text):
        found = _CONDITION_END.search(claim.text, match.end())
        spans.append((match.start(), found.start() if found else len(claim.text)))
    return spans


def _plain(w: Word) -> bool:
    return (w.lower not in lx.FUNCTION_WORDS and w.lower not in lx.FILLERS and not w.lower[:1].isdigit()
            and w.lower not in lx.NUMBER_WORDS and w.lower not in lx.TIMES_WORDS and len(w.lower) > 1)


def _number_contexts(reading: Reading) -> list[tuple[str, str, set[str]]]:
    """(key, as written, stems it is bound to) per digit number that is not a year: the word right before
    it ("losartan 50") and the first content words after it within its clause ("50 ml of solution")."""
    words, text, out = reading.words, reading.text, []
    for i, w in enumerate(words):
        key = _number_key(w.lower) if w.lower[:1].isdigit() else None
        if key is None or re.fullmatch(r"(?:1[89]|20)\d\d", key):
            continue
        bound = set()
        before = words[i - 1] if i else None
        if before and _plain(before) and not before.sentence_start and not text[before.end:w.start].strip():
            bound.add(before.stem)
        taken = 0
        for prev, nxt in zip(words[i:], words[i + 1:i + 6]):
            stop = nxt.lower in lx.FUNCTION_WORDS and nxt.lower not in ("of", "per")  # "12 was dropped": a verb
            if (_PUNCTUATION.search(text[prev.end:nxt.start]) or nxt.lower[:1].isdigit() or stop
                    or taken == _CONTEXT_AFTER):
                break
            if _plain(nxt) and not (nxt.capitalised and not nxt.sentence_start):
                bound.add(nxt.stem)
                taken += 1
        out.append((key, w.text, bound))
    return out


def _numbers_bound(claim: Reading, window: list[Reading]) -> list[str]:
    """'500 ml of solution' against a passage that gives 50 ml of solution and 500 ml of water."""
    bound: dict[str, set[str]] = {}
    shown: dict[str, str] = {}
    for reading in window:
        for key, text, stems in _number_contexts(reading):
            shown.setdefault(key, text)
            for s in stems:
                bound.setdefault(s, set()).add(key)
    problems = []
    for key, text, stems in _number_contexts(claim):
        if key not in shown:
            continue  # a number the passage lacks is the specifics check's to report
        for s in sorted(stems):
            others = bound.get(s, set())
            if others and key not in others:
                word = next(w.text for w in claim.words if w.stem == s)
                problems.append(f"the passage gives {shown[min(others)]} for '{word}', not {text}")
                break
    return problems


def _name_runs(reading: Reading) -> list[tuple[int, int]]:
    """Word index ranges of personal and proper names: capitalised words that are not roles or titles."""
    runs, start = [], None
    words = reading.words
    for i, w in enumerate(words + [None]):
        name = (w is not None and w.capitalised and w.lower not in lx.ROLES and w.lower not in lx.FUNCTION_WORDS
                and w.lower not in lx.MONTHS and w.lower not in ("mr", "mrs", "ms", "dr", "prof")
                and not w.lower[:1].isdigit()
                and (not w.sentence_start or (i + 1 < len(words) and words[i + 1].capitalised)))
        if name and start is None:
            start = i
        elif not name and start is not None:
            runs.append((start, i))
            start = None
    return runs


def _role_names(reading: Reading) -> dict[str, set[str]]:
    """Role stem -> surnames written right next to it ("Mayor Ingrid Solberg", "Reyes, the chief engineer")."""
    words, text = reading.words, reading.text
    found: dict[str, set[str]] = {}
    runs = _name_runs(reading)
    for i, w in enumerate(words):
        if w.lower not in lx.ROLES:
            continue
        for start, end in runs:
            after = start == i + 1 and _ROLE_THEN_NAME.match(text[w.end:words[start].start])
            before = end <= i and i - end <= 3 and _NAME_THEN_ROLE.match(text[words[end - 1].end:w.start])
            if after or before:
                found.setdefault(w.stem, set()).add(words[end - 1].lower)
    return found


def _roles_bound(claim: Reading, window: list[Reading]) -> list[str]:
    """'Tomas Reyes, the mayor' against 'Mayor Ingrid Solberg ... the chief engineer, Tomas Reyes'."""
    theirs: dict[str, set[str]] = {}
    for reading in window:
        for role, names in _role_names(reading).items():
            theirs.setdefault(role, set()).update(names)
    problems = []
    for role, names in _role_names(claim).items():
        other = theirs.get(role, set())
        for name in sorted(names - other) if other else ():
            word = next(w.text for w in claim.words if w.stem == role)
            problems.append(f"the passage names {' or '.join(sorted(n.title() for n in other))} as {word.lower()}, "
                            f"not {name.title()}")
    return problems


def _names_linked(claim: Reading, window: list[Reading]) -> list[str]:
    """'The Customer may terminate this Agreement' against 'The Supplier may terminate this Agreement': the
    passage links another name the same way, and never this one."""
    text = " ".join(r.text for r in window)
    problems = []
    for first, second in zip(claim.names, claim.names[1:]):
        a, b = " ".join(w.lower for w in first), " ".join(w.lower for w in second)
        between = claim.text[first[-1].end:second[0].start].strip(" '")
        if first[-1].text.isupper() or second[0].text.isupper():
            continue  # an acronym ("UK") may stand for a longer name the passage spells out
        if not between or len(between.split()) > 6 or not re.search(r"[^\W\d_]", between) or a == b:
            continue
        link = r"\W+".join(map(re.escape, between.split()))
        if re.search(rf"\b{re.escape(a)}(?:'s)?\W+{link}\W+{re.escape(b)}\b", text, re.IGNORECASE):
            continue
        for pattern, mine in ((rf"\b([^\W\d_]+)(?:'s)?\W+{link}\W+{re.escape(b)}\b", first[-1].lower),
                              (rf"\b{re.escape(a)}(?:'s)?\W+{link}\W+([^\W\d_]+)", second[0].lower)):
            other = next((m for m in re.finditer(pattern, text, re.IGNORECASE) if m.group(1)[0].isupper()
                          and m.group(1).lower() not in lx.FUNCTION_WORDS and m.group(1).lower() != mine), None)
            if other:
                problems.append(f"the passage says '{other.group(0)}'")
                break
    return problems


def _subjects_swapped(claim: Reading, window: list[Reading]) -> list[str]:
    """'Losartan was stopped today' against 'lisinopril was stopped today ... losartan 50 mg was started':
    the window says the same three words of another of its words, and never of this one."""
    words = [w for r in window for w in r.words]
    text = " ".join(r.text for r in window)
    said = {w.stem for w in words}
    for i, w in enumerate(claim.words[:-3]):
        link = claim.words[i + 1:i + 4]
        if not _plain(w) or w.stem not in said or sum(_plain(x) for x in link) < 2 or _PUNCTUATION.search(
                claim.text[w.end:link[-1].start]):
            continue
        pattern = r"\s+".join(re.escape(x.text) for x in link)
        found = [m for m in re.finditer(rf"\b([^\W\d_]+)\s+{pattern}\b", text, re.IGNORECASE)]
        other = next((m for m in found if m.group(1).lower() not in lx.FUNCTION_WORDS), None)
        near = [x.stem for x in claim.words[max(0, i - 3):i + 1]]  # "compete on cost with": loosely placed
        if other is None or any(_related(stem(m.group(1).lower()), s) for m in found for s in near):
            continue
        return [f"the passage says '{other.group(0)}'"]
    return []


def _related(a: str, b: str) -> bool:
    """'area' and 'area', 'compet' and 'competit': one stem the start of the other."""
    return a == b or min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a))


def _meridiem(claim: Reading, window: list[Reading]) -> list[str]:
    """'9 p.m.' against a passage that says '9 a.m.'."""
    mine = {m.group(1).lower() for m in _MERIDIEM.finditer(claim.text)}
    theirs = {m.group(1).lower() for r in window for m in _MERIDIEM.finditer(r.text)}
    return [f"the passage says {'a.m.' if half == 'p' else 'p.m.'}, not {half}.m." for half in sorted(mine - theirs)
            if theirs]
