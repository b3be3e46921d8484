"""Does a passage window (one or two adjacent sentences) support a claim? Rule checks on the claim's
specifics, polarity and stated reasons, then the share of its other content words the window covers
(stemmed, or a near-synonym by word embedding).

Example: ``judge(read("China lifted the controls."), [read("China imposed the controls.")]).problems[0]``
→ "the passage says 'imposed', not 'lifted'"
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from . import lexicon as lx
from .claims import TITLES, Reading, Word, negation, read, stem
from .relations import condition_spans, relation_problems

# A claim word counts as covered by a passage word this close in embedding space (all-MiniLM-L6-v2 puts
# "stayed"/"remained" at 0.68, "staff"/"employees" at 0.72, unrelated words below 0.3). Lower lets
# same-category words through ("juice"/"vinegar" 0.56), which only the closed word lists would catch.
SYNONYM_SIMILARITY = 0.6
# Share of the claim's remaining content words the window must cover: a paraphrase may use about three
# words in ten of its own ("explained" where the passage says "introduced"), not more.
MIN_COVERAGE = 0.7
# Words of a stated reason ("because ...") the window must cover: a reason is a claim of its own.
MIN_REASON_COVERAGE = 0.6
# Beyond this many uncovered words a sentence is not a paraphrase of the window; skip the lookups.
MAX_LOOKUPS = 24
Similar = Callable[[list[str], list[str]], np.ndarray]
_NAME_SUFFIXES = {"ese", "an", "ian", "n", "ish", "i", "ic", "ean", "s"}
# A passage that states a cause or purpose says so with one of these.
_CAUSE = re.compile(r"\b(?:because|since|due to|owing to|as a result|so that|in order to|so as to|in retaliation|"
                    r"in response|caus\w*|thanks to|therefore|thus|hence|lead to|leads to|led to|result\w*|reason\w*|"
                    r"why|after|amid|so|to (?!the\b|a\b|an\b)\w+)", re.IGNORECASE)
_NOT_MENTIONED = "the passage does not mention "
_TAKE = {"take", "takes", "took", "taken", "taking"}
_CONNECTORS = {"of", "and", "the", "for", "&", "de", "du", "van", "von"}


@dataclass
class Judgement:
    """The verdict on one claim against one window: ``problems`` in words, most telling first."""

    coverage: float
    problems: list[str] = field(default_factory=list)

    @property
    def supported(self) -> bool:
        return not self.problems

    @property
    def score(self) -> float:
        """Coverage when supported; halved when a rule failed, so scores under 0.5 mean unsupported."""
        return round(self.coverage if self.supported else self.coverage * 0.5, 4)


@dataclass
class Window:
    """Sentences of a passage judged together: their readings merged."""

    readings: list[Reading]

    @property
    def words(self) -> list[Word]:
        return [w for r in self.readings for w in r.words]

    @property
    def text(self) -> str:
        return " ".join(r.text for r in self.readings)

    @property
    def clauses(self) -> list[str]:
        return [r.text[s:e] for r in self.readings for s, e in r.clauses]


def judge(claim: Reading, window: list[Reading], similar: Similar | None = None,
          elsewhere: frozenset[str] = frozenset()) -> Judgement:
    """Check ``claim`` against the window's sentences; ``similar(a, b)`` gives word-embedding cosines;
    ``elsewhere``: stems of the rest of the passage (a claim word found there gets no synonym credit here,
    so the evidence is the sentence that says it)."""
    view = Window(window)
    stems = {w.stem for w in view.words}
    lowers = {w.lower for w in view.words}
    problems = (_specifics(claim, view, stems, lowers) + _polarity(claim, view) + _swapped(claim, view)
                + relation_problems(claim, window))
    if problems:
        similar = None  # no synonym can mend a changed fact: spare the embedding look-ups
    content = _content(claim.words)
    if not (content or claim.numbers or claim.ordinals or claim.months or claim.names or claim.addresses):
        return Judgement(0.0, ["the sentence states nothing the passage could confirm"])
    coverage, missing = _coverage(content, view, similar, elsewhere, MIN_COVERAGE)
    for start, end in claim.reasons:
        reason_words = _content(read(claim.text[start:end]).words)
        reason_coverage, _ = _coverage(reason_words, view, similar, elsewhere, MIN_REASON_COVERAGE)
        # A reason the passage words differently must also be given as one there ("because", "so", "to").
        stated = reason_coverage == 1.0 or _CAUSE.search(view.text)
        if reason_words and (reason_coverage < MIN_REASON_COVERAGE or not stated):
            problems.append(f"the passage does not give the reason '{claim.text[start:end].strip()}'")
    for start, end in condition_spans(claim):
        # A condition is a claim of its own: "... if the Supplier raises its prices" needs the passage to say it.
        words = _content(read(claim.text[start:end]).words)
        if words and _coverage(words, view, similar, elsewhere, MIN_REASON_COVERAGE)[0] < MIN_REASON_COVERAGE:
            problems.append(f"the passage does not give the condition '{claim.text[start:end].strip(' .!?')}'")
    if coverage < MIN_COVERAGE:
        problems.append("the passage does not support " + ", ".join(f"'{w}'" for w in missing[:3]))
    return Judgement(coverage, [_elsewhere(p, elsewhere) for p in problems])


def _elsewhere(problem: str, elsewhere: frozenset[str]) -> str:
    """'the passage does not mention Okafor' reads 'only in another sentence' when the passage does, away
    from the sentence that says the rest."""
    named = problem.removeprefix(_NOT_MENTIONED)
    words = re.findall(r"[^\W\d_]+", named.lower())
    if named != problem and words and all(stem(w) in elsewhere for w in words):
        return f"the passage mentions {named} only in another sentence"
    return problem


def _specifics(claim: Reading, view: Window, stems: set[str], lowers: set[str]) -> list[str]:
    problems = []
    addresses = {a for r in view.readings for a in r.addresses}
    problems += [f"the passage does not contain {a}" for a in sorted(claim.addresses - addresses)]
    numbers = [q for r in view.readings for q in r.numbers]
    keys = {q.key for q in numbers}
    for q in claim.numbers:
        same_unit = {n.key for n in numbers if q.unit and n.unit == q.unit}
        if (not q.soft and q.key not in keys) or (same_unit and q.key not in same_unit):
            problems.append(f"the passage does not mention {q.shown}")
    ordinals = {k for r in view.readings for k in r.ordinals}
    problems += [f"the passage does not mention {w}" for k, w in claim.ordinals.items() if k not in ordinals]
    months = {k for r in view.readings for k in r.months}
    problems += [f"the passage does not mention {w}" for k, w in claim.months.items() if k not in months]
    acronyms = _acronyms(view.words)
    for run in claim.names:
        missing = [w for w in run if not _name_found(w, stems, lowers, acronyms)]
        if missing and _initials(run) not in lowers:
            shown = " ".join(w.text.removesuffix("'s").removesuffix("’s") for w in run)
            problems.append(_NOT_MENTIONED + shown)
    problems += [f"the passage does not mention {w}" for s, w in claim.closed.items()
                 if s not in stems and w.lower() not in lowers]
    said = {w.lower for w in claim.words}
    for mine, theirs, word in ((lx.HE, lx.SHE, "she"), (lx.SHE, lx.HE, "he")):
        if said & mine and lowers & theirs and not lowers & mine:
            problems.append(f"the passage says {word}, not {next(iter(said & mine))}")
    return problems


def _name_found(word: Word, stems: set[str], lowers: set[str], acronyms: set[str]) -> bool:
    if word.lower in lowers or word.stem in stems or (word.text.isupper() and word.lower in acronyms):
        return True
    return any(_same_name(word.lower, other) or _same_name(other, word.lower) for other in lowers)


def _same_name(name: str, other: str) -> bool:
    """Japan / Japanese, China / Chinese, Korea / Korean: a name and its adjective."""
    base = name.rstrip("aeiouy") if len(name) > 4 else name
    return other.startswith(base) and other[len(base):] in _NAME_SUFFIXES


def _initials(run: list[Word]) -> str:
    return "".join(w.lower[0] for w in run) if len(run) > 1 else ""


def _acronyms(words: list[Word]) -> set[str]:
    """Initials of each run of capitalised words ('Ministry of Economy, Trade and Industry' -> 'meti'),
    with their contiguous parts, so 'METI' and 'UK' match the names they stand for."""
    found: set[str] = set()
    run: list[str] = []
    for w in words + [None]:
        if w is not None and (w.capitalised and not w.lower[:1].isdigit() or (run and w.lower in _CONNECTORS)):
            if w.capitalised:
                run.append(w.lower[0])
            continue
        letters = "".join(run)
        found |= {letters[i:j] for i in range(len(letters)) for j in range(i + 2, len(letters) + 1)}
        run = []
    return found


def _clause_terms(text: str) -> set[str]:
    """Content stems and numbers of a clause: what ties it to a clause of the other text."""
    reading = read(text)
    return {w.stem for w in _content(reading.words)} | {q.key for q in reading.numbers}


def _polarity(claim: Reading, view: Window) -> list[str]:
    """Negation and antonyms, clause by clause: each claim clause against its closest window clause."""
    problems: list[str] = []
    window_clauses = [(c, _clause_terms(c)) for c in view.clauses]
    claim_stems = claim.stems
    window_stems = {w.stem for w in view.words}
    for start, end in claim.clauses:
        text = claim.text[start:end]
        terms = _clause_terms(text)
        if not terms or not window_clauses:
            continue
        best, best_terms = max(window_clauses, key=lambda c: (len(terms & c[1]), _jaccard(terms, c[1])))
        if len(terms & best_terms) < min(2, len(terms)):
            continue
        (mine, my_scope), (theirs, their_scope) = negation(text, window_stems), negation(best, claim_stems)
        # Opposite polarity counts when the negation governs a shared word ("no lactose" against
        # "contains lactose"), not when it governs another part ("starch but no lactose" against "starch").
        if mine != theirs and terms & best_terms & (my_scope if mine else their_scope) or (
                mine and _only_said_plainly(my_scope & terms, view, claim_stems)):
            problems.append(f"negation differs from the passage ('{best.strip()}')")
            continue
        problems += _opposites(read(text).words, {w.stem: w.text for w in read(best).words})
    said = [p for p in _opposites(claim.words, {w.stem: w.text for w in view.words}) if p not in problems]
    return problems + said


def contradicted(claim: Reading, passage: list[Reading]) -> list[str]:
    """Negations and antonyms of the claim anywhere in the passage, not only in its best window: "You may
    use the machine while the light flashes" against "Do not use the machine while the light flashes"
    three sentences on."""
    # Negation only: an antonym in some other sentence ("closed" in 2023, "reopened" in 2025) is no contradiction.
    return [p for p in _polarity(claim, Window(passage)) if p.startswith("negation differs")]


def _only_said_plainly(negated_terms: set[str], view: Window, claim_stems: set[str]) -> bool:
    """True when the window uses the words a claim negates ("has not been fixed") only in sentences with no
    negation at all ("has been fixed"), whichever clause the best match fell on."""
    plain = None
    for reading in view.readings:
        if negated_terms & reading.stems:
            said_not = any(negation(reading.text[s:e], claim_stems)[0] for s, e in reading.clauses)
            plain = (plain is None or plain) and not said_not
    return bool(plain)


def _opposites(words: list[Word], other: dict[str, str]) -> list[str]:
    """A word whose opposite the other text uses while it does not use the word itself."""
    problems = []
    for w in words:
        opposite = [other[o] for o in _antonyms().get(w.stem, ()) if o in other]
        if opposite and w.stem not in other:
            problems.append(f"the passage says '{opposite[0]}', not '{w.text}'")
    return problems


def _swapped(claim: Reading, view: Window) -> list[str]:
    """Two names the passage links the other way round: 'Japan urged China' against 'China urged Japan'."""
    problems = []
    window = view.text.lower()
    for first, second in zip(claim.names, claim.names[1:]):
        a, b = " ".join(w.lower for w in first), " ".join(w.lower for w in second)
        between = claim.text[first[-1].end:second[0].start].lower().strip(" '")
        if not between or len(between.split()) > 6 or a == b:
            continue
        link = r"\W+".join(map(re.escape, between.split()))
        reverse = re.search(rf"\b{re.escape(b)}(?:'s)?\W+{link}\W+{re.escape(a)}\b", window)
        forward = re.search(rf"\b{re.escape(a)}(?:'s)?\W+{link}\W+{re.escape(b)}\b", window)
        if reverse and not forward:
            problems.append(f"the passage has it the other way round ('{reverse.group(0)}')")
    return problems


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


@lru_cache(maxsize=1)
def _antonyms() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for word, opposites in lx.ANTONYMS.items():
        table.setdefault(stem(word), set()).update(stem(o) for o in opposites)
    return table


def _content(words: list[Word]) -> list[Word]:
    """Words whose content the coverage check weighs: not names, numbers, function words or fillers
    (those have checks of their own or say nothing checkable)."""
    out, seen = [], set()
    for i, w in enumerate(words):
        if w.lower == "place" and i and words[i - 1].lower in _TAKE:
            continue  # "took place" says no more than "ran" or "was held"
        if (w.capitalised and not w.sentence_start) or w.lower[:1].isdigit() or w.stem in seen:
            continue
        if w.lower in lx.FUNCTION_WORDS or w.lower in lx.FILLERS or w.lower in lx.NEGATION_WORDS or w.lower in TITLES:
            continue
        if w.lower in lx.NUMBER_WORDS or w.lower in lx.ORDINAL_WORDS or w.lower in lx.TIMES_WORDS or len(w.lower) < 2:
            continue
        seen.add(w.stem)
        out.append(w)
    return out


def _coverage(words: list[Word], view: Window, similar: Similar | None, elsewhere: frozenset[str] = frozenset(),
              needed: float = 1.0) -> tuple[float, list[str]]:
    """Share of ``words`` the window covers, and the uncovered ones (as written); synonyms are looked up
    only while the share is below ``needed``."""
    if not words:
        return 1.0, []
    stems = {w.stem for w in view.words}
    uncovered = [w for w in words if w.stem not in stems and not _shares_stem(w.stem, stems)]
    lookups = [w for w in uncovered if w.stem not in elsewhere]
    if lookups and similar is not None and len(uncovered) <= MAX_LOOKUPS and 1 - len(uncovered) / len(words) < needed:
        said = {w.stem for w in words}
        candidates = sorted({w.lower for w in view.words if w.lower not in lx.FUNCTION_WORDS and w.stem not in said
                             and not w.lower[:1].isdigit() and len(w.lower) > 1
                             and not (w.capitalised and not w.sentence_start)})
        if candidates:
            closest = similar([w.lower for w in lookups], candidates).max(axis=1)
            matched = {w.stem for w, sim in zip(lookups, closest) if sim >= SYNONYM_SIMILARITY}
            uncovered = [w for w in uncovered if w.stem not in matched]
    return 1 - len(uncovered) / len(words), [w.text for w in uncovered]


def _shares_stem(word_stem: str, stems: set[str]) -> bool:
    """'compet' and 'competit', 'close' and 'closur': one stem (less a final 'e') the start of the other."""
    if len(word_stem) < 5:
        return False
    mine = word_stem[:-1] if word_stem.endswith("e") else word_stem  # 'close' and 'closur' (closure)
    return any(len(s) >= 5 and (s.startswith(mine) or word_stem.startswith(s[:-1] if s.endswith("e") else s))
               for s in stems)

