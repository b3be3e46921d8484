"""What a sentence asserts, in checkable parts: its specifics (numbers with their units, ordinals, months,
names, chemical elements, colours, positions, URLs), its clauses with their polarity, and its other
content words. ``read`` parses a text once; rag/support.py compares a claim's parts with a passage's.

Example: ``read("China imposed controls in July 2023.").months == {7: "July"}``
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from . import lexicon as lx
from .terms import stemmer

# URLs and e-mail addresses are compared whole, before the text is cut into words.
# An address starts where no address character precedes it: a 100 kB word is scanned once, not once per letter.
ADDRESS = re.compile(r"(?:https?://|www\.)[^\s<>\"'\])]+|(?<![\w.+-])[\w.+-]++@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*(?:st|nd|rd|th)?|[^\W\d_]+(?:'[^\W\d_]+)*|[%£$€]")
_ANSWER_PARTICLE = re.compile(r"^\s*(?:yes|no)\s*[,.!;:]\s*", re.IGNORECASE)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
# Where a clause ends: punctuation, or a word that opens a contrast or a reason.
_CLAUSE_BREAK = re.compile(r"[,;:()\[\]—–]|\b(?:but|while|whereas|although|though|because|since|due to|owing to|"
                           r"rather than|instead of)\b", re.IGNORECASE)
# A stated reason or purpose: a claim of its own that the passage must back ("to protect ...").
_REASON = re.compile(r"\b(?:because|due to|owing to|as a result of|in order to|so that|so as to|in retaliation for|"
                     r"in response to|caused by|thanks to|to (?:protect|prevent|avoid|ensure|stop|punish|reward|"
                     r"boost|support|attract|secure|comply|encourage|discourage|counter|offset|compensate|improve))\b",
                     re.IGNORECASE)
_REASON_END = re.compile(r"[,;:()]|\b(?:but|while|whereas|although|though|rather than|instead of)\b",
                         re.IGNORECASE)
_MONTH_CONTEXT = {"in", "from", "since", "until", "till", "between", "by", "of", "to", "and", "early", "late", "mid"}
TITLES = {"dr", "mr", "mrs", "ms", "prof", "sir", "st"}
_TITLES = TITLES
_STEMMED: dict[str, str] = {}


@dataclass(frozen=True)
class Word:
    """One word of a text: as written, lower-cased (possessive and apostrophes dropped), stemmed."""

    text: str
    lower: str
    stem: str
    start: int
    end: int
    capitalised: bool
    sentence_start: bool


@dataclass(frozen=True)
class Quantity:
    """A number as a comparable key ("1200", "2.1", "0800") with the stem of the word it counts."""

    key: str
    unit: str
    shown: str
    soft: bool = False  # a small number word ("two"), often implied rather than written


@dataclass
class Reading:
    """The checkable parts of one text."""

    text: str
    words: list[Word]
    numbers: list[Quantity] = field(default_factory=list)
    ordinals: dict[int, str] = field(default_factory=dict)
    months: dict[int, str] = field(default_factory=dict)
    names: list[list[Word]] = field(default_factory=list)  # runs of capitalised words
    closed: dict[str, str] = field(default_factory=dict)  # stem -> word, for elements, colours, units, ...
    addresses: set[str] = field(default_factory=set)
    clauses: list[tuple[int, int]] = field(default_factory=list)  # char spans
    reasons: list[tuple[int, int]] = field(default_factory=list)  # char spans of "because ..." parts

    @property
    def stems(self) -> set[str]:
        return {w.stem for w in self.words}


def stem(word: str) -> str:
    """The Snowball stem of a lower-case word, remembered."""
    if word not in _STEMMED:
        if len(_STEMMED) > 100_000:
            _STEMMED.clear()
        _STEMMED[word] = stemmer().stemWord(word)
    return _STEMMED[word]


def normalise(text: str) -> str:
    """Curly quotes straight, a leading "Yes,"/"No," dropped, ISO dates spelled out ("2023-07-01" ->
    "1 July 2023"), "per cent" as "percent"."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = _ANSWER_PARTICLE.sub("", text)  # "No, it was not ..." says "not" once, not twice
    def spelled(m: re.Match) -> str:
        month = int(m.group(2))
        return f"{int(m.group(3))} {lx.MONTH_NAMES[month - 1].title()} {m.group(1)}" if 1 <= month <= 12 else m.group(0)

    text = _ISO_DATE.sub(spelled, text)
    return re.sub(r"\bper\s+cent\b", "percent", text, flags=re.IGNORECASE)


@lru_cache(maxsize=4096)
def read(text: str) -> Reading:
    """Parse ``text`` into its checkable parts (cached: passage sentences recur)."""
    text = normalise(text)
    addresses = {m.group(0).rstrip(".,;:!?").lower() for m in ADDRESS.finditer(text)}
    masked = ADDRESS.sub(lambda m: " " * len(m.group(0)), text)
    reading = Reading(text, _words(masked), addresses=addresses)
    _find_numbers(reading)
    _find_names_and_classes(reading)
    reading.clauses = _clauses(text)
    reading.reasons = [(m.start(), _clause_end(text, m.end())) for m in _REASON.finditer(text)]
    return reading


def _words(text: str) -> list[Word]:
    out: list[Word] = []
    for match in _TOKEN.finditer(text):
        raw = match.group(0)
        lower = raw.lower()
        if lower.endswith("'s"):
            lower = lower[:-2]
        lower = lower.replace("'", "")
        if lower == "%":
            lower = "percent"
        before = text[max(0, match.start() - 8):match.start()].rstrip()
        title = bool(out) and out[-1].lower in _TITLES  # "Mr. Okafor": the full stop ends a title, not a sentence
        first = not out or (before.endswith((".", "!", "?", ":", '"', "'")) and not title)
        out.append(Word(raw, lower, stem(lower), match.start(), match.end(), raw[:1].isupper(), first))
    return out


def _number_key(raw: str) -> str | None:
    """'1,200' -> '1200', '2.10' -> '2.1', '0800' -> '0800' (a code keeps its zeros), '5th' -> None."""
    if re.fullmatch(r"\d+(?:,\d{3})+", raw):
        raw = raw.replace(",", "")
    if re.fullmatch(r"0\d{2,}", raw):
        return raw
    try:
        return _key(float(raw.replace(",", "."))) if raw.count(",") <= 1 else raw
    except ValueError:
        return None


def _key(value: float) -> str:
    """A number as text for comparing: 1200.0 -> '1200', 2.10 -> '2.1' (twelve digits kept)."""
    return f"{value:.12g}"


def _unit_after(words: list[Word], i: int) -> str:
    """The stem of the word a number counts, right after it ('12 cups' -> 'cup', '12 more items' -> 'item');
    empty when a function word follows ('16 and drops')."""
    for w in words[i + 1:i + 3]:
        if w.lower not in ("additional", "more", "extra", "further", "new", "other"):
            plain = w.lower not in lx.FUNCTION_WORDS and not _is_number(w)
            return w.stem if plain else ""
    return ""


def _find_numbers(reading: Reading) -> None:
    words, i = reading.words, 0
    while i < len(words):
        w = words[i]
        ordinal = re.fullmatch(r"(\d+)(st|nd|rd|th)", w.lower)
        if ordinal:
            reading.ordinals[int(ordinal.group(1))] = w.text
        elif w.lower[:1].isdigit():
            key = _number_key(w.lower)
            if key is not None:
                reading.numbers.append(Quantity(key, _unit_after(words, i), w.text))
            # A Chinese or Japanese month, "7月": the same month as "July".
            after = words[i + 1] if i + 1 < len(words) and words[i + 1].start == w.end else None
            if after and after.text.startswith("月") and w.lower.isdigit() and 1 <= int(w.lower) <= 12:
                reading.months[int(w.lower)] = w.text + "月"
        elif w.lower in lx.ORDINAL_WORDS and not (w.lower == "second" and i and _is_number(words[i - 1])):
            reading.ordinals[lx.ORDINAL_WORDS[w.lower]] = w.text
        elif w.lower in lx.TIMES_WORDS and not (w.lower == "once" and i and words[i - 1].lower == "at"):  # "at once"
            reading.numbers.append(Quantity(_key(lx.TIMES_WORDS[w.lower]), "time", w.text))
        elif w.lower in lx.NUMBER_WORDS:
            value, j = _spelled_number(words, i)
            shown = " ".join(x.text for x in words[i:j])
            soft = value in lx.SOFT_VALUES
            reading.numbers.append(Quantity(_key(value), _unit_after(words, j - 1), shown, soft))
            i = j
            continue
        i += 1


def _is_number(w: Word) -> bool:
    return w.lower[:1].isdigit() or w.lower in lx.NUMBER_WORDS


def _spelled_number(words: list[Word], i: int) -> tuple[float, int]:
    """The value of number words from ``i`` ('twenty five' -> 25, 'two hundred' -> 200) and where they end."""
    total, current, j = 0.0, 0.0, i
    while j < len(words) and words[j].lower in lx.NUMBER_WORDS:
        value = lx.NUMBER_WORDS[words[j].lower]
        if value >= 100 and words[j].lower not in ("dozen",):
            current = (current or 1) * value
            if value >= 1000:
                total, current = total + current, 0.0
        else:
            current += value
        j += 1
    return total + current, j


def _find_names_and_classes(reading: Reading) -> None:
    run: list[Word] = []
    for i, w in enumerate(reading.words):
        month = lx.MONTHS.get(w.lower)
        if month and len(w.lower) >= 3 and _is_month(reading.words, i):
            reading.months[month] = w.text
        elif _is_name(w):
            run.append(w)
            continue
        for table in (lx.ELEMENTS, lx.COLOURS, lx.POSITIONS, lx.UNITS, lx.WEEKDAYS, lx.ROLES):
            if w.lower in table and not _used_as_verb(reading.words, i):
                reading.closed[w.stem] = w.text
        if run:
            reading.names.append(run)
            run = []
    if run:
        reading.names.append(run)


def _used_as_verb(words: list[Word], i: int) -> bool:
    """'can lead to', 'will iron out': an element name used as a verb."""
    before = words[i - 1].lower if i else ""
    after = words[i + 1].lower if i + 1 < len(words) else ""
    return words[i].lower in lx.VERB_LIKE_ELEMENTS and (after in ("to", "the", "a", "an", "by", "up", "out", "off")
                                                       or before in lx.FUNCTION_WORDS - {"the", "a", "an", "of"})


def _is_month(words: list[Word], i: int) -> bool:
    """'May' and 'March' are months only next to a number or after 'in', 'from', ...; the others always."""
    w = words[i]
    if w.lower not in ("may", "march", "mar", "jan", "jun", "jul", "oct", "dec", "sept", "aug", "nov", "feb", "apr"):
        return w.lower in lx.MONTH_NAMES
    near = [x for x in (words[i - 1] if i else None, words[i + 1] if i + 1 < len(words) else None) if x]
    return w.capitalised and any(_is_number(x) or x.lower in _MONTH_CONTEXT for x in near)


def _is_name(w: Word) -> bool:
    """A capitalised word that is a name: mid-sentence, or a country or element at the start."""
    if not w.capitalised or w.lower[:1].isdigit() or w.lower in _TITLES or w.text == "I":
        return False
    if w.lower in lx.FUNCTION_WORDS or w.lower in lx.NEGATION_WORDS:
        return w.text.isupper() and len(w.text) > 1 and not w.sentence_start
    if w.sentence_start:
        return w.lower in lx.COUNTRIES or w.lower in lx.ELEMENTS
    return True


def _clause_end(text: str, at: int) -> int:
    found = _REASON_END.search(text, at)
    return found.start() if found else len(text)


def _clauses(text: str) -> list[tuple[int, int]]:
    """Char spans of the clauses of ``text``; a break word ('because', 'rather than') opens the next clause."""
    spans, start = [], 0
    for match in _CLAUSE_BREAK.finditer(text):
        if text[start:match.start()].strip():
            spans.append((start, match.start()))
        start = match.start() if match.group(0)[0].isalpha() else match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    merged: list[tuple[int, int]] = []
    for span in spans:
        # "..., but no lactose": a fragment too short to stand alone belongs to the clause before it.
        if merged and len([w for w in re.findall(r"[^\W\d_]+", text[span[0]:span[1]].lower())
                           if w not in lx.FUNCTION_WORDS and w not in lx.NEGATION_WORDS]) <= 1:
            merged[-1] = (merged[-1][0], span[1])
        else:
            merged.append(span)
    return merged


def negation(text: str, other_stems: set[str]) -> tuple[bool, set[str]]:
    """Whether a clause says "not" (an odd number of negation cues, counting a prefix that negates a word
    the other side uses plainly: 'incorrectly' against 'correctly'), and the stems the first cue governs
    (the words after it).

    Example: ``negation("the tank is not seated correctly", set()) == (True, {"seat", "correct"})``
    """
    lowered = " " + text.lower().replace("'", "").replace("’", "") + " "
    for phrase in lx.NEGATION_PHRASES:
        lowered = re.sub(r"\b" + phrase + r"\b", " not ", lowered)
    count, scope = 0, None
    for token in re.findall(r"[^\W_]+", lowered):
        base = next((token[len(p):] for p in lx.NEGATING_PREFIXES if token.startswith(p) and len(token) > len(p) + 3
                     and stem(token[len(p):]) in other_stems and stem(token) not in other_stems), None)
        if token in lx.NEGATION_WORDS or base:
            count += 1
            scope = set() if scope is None else scope
            if base:
                scope.add(stem(base))
        elif scope is not None:
            scope.add(stem(token))
    return count % 2 == 1, scope or set()
