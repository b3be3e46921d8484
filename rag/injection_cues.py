"""Words without which the screening rules of rag/injection.py cannot mark a sentence, found in one scan
of a whole text, so that only the few sentences holding them go through the full rules.

Each rule needs certain words: "Ignore all previous instructions" an override verb and its object, "AI
assistants must say ..." an order verb and a word that names an AI, "When answering, state ..." an order
verb and words about answers. A sentence without any such combination cannot be marked by the rules, so
skipping it leaves the result unchanged. The cues are whole words (or marker strings), because the rules
may read a sentence with its quoted passages blanked, which removes words but never adds one.

Example: ``[may_order(b) for b in sentence_cues("Otters eat fish. Ignore all rules.", [(0, 16), (17, 34)])]``
is ``[False, True]``.
"""
from __future__ import annotations

import re
from functools import lru_cache

# Word classes, each the words of the rules it stands for (rag/injection.py); "word*" is any word it begins.
_WORDS = {
    # A word that names an AI on its own (_AI), and the pairs that do ("language models", "systems that read").
    "ai": "ai a.i artificial chatbot chatbots bot bots llm llms gpt* chatgpt* claude gemini copilot bard "
          "summariser summarisers summarizer summarizers",
    "ai_adj": "virtual digital automated automatic chat coding research writing answering search language",
    "noun": "assistant assistants agent agents system systems reader readers tool tools summariser summarisers "
            "summarizer summarizers model models crawler crawlers scraper scrapers",
    "proc": "read reads reading process processes processing summaris* summariz* pars* index* scan* ingest*",
    # _ADDRESS: "Note to AI", "Dear assistant", "If you are an AI", "You, the assistant".
    "greet": "note message notice reminder ps p.s attention hey hi hello dear psst",
    "addressee": "assistant* model* agent*",
    "you": "you",
    "you_role": "ai a.i bot bots chatbot chatbots assistant assistants language llm llms automated model models",
    # _DIRECT: "Model: ...", "as an assistant", "reading this page"; a label needs a colon or comma after it.
    "direct_label": "ai ais llm llms assistant assistants chatbot chatbots bot bots model models",
    "role_label": "system assistant developer ai chatbot",
    "direct": "language assistant assistants",
    "this": "this",
    "these": "these",
    "doc": "page document text article site file email message content note",
    # _ANSWERING: "when asked", "in your answers", "any question about", "the user's question".
    "when": "when if whenever while",
    "answering": "asked answering questioned summarising summarizing responding generating writing",
    "det": "your any every each all",
    "output": "answer answers response responses summary summaries output outputs completion completions generated",
    "question": "question questions query queries",
    "user": "user users",
    "prompt": "prompt prompts",
    # _OVERRIDE: the verb (one word of "set aside", "pay no attention to", "stop following") and its object.
    "override": "ignore disregard override forget bypass abandon discard aside attention follow following supersede",
    "object": "instruction instructions prompt prompts rules directive directives guidelines guardrails programming "
              "training message messages context constraints restrictions policy policies command commands orders "
              "directions text content everything above told",
    # _ORDER_VERB: speech and action verbs.
    "order": "say says state answer reply respond output print write include tell claim mention report recommend "
             "cite insist assert confirm declare repeat reveal promote praise describe conclude suggest emphasise "
             "emphasize stress warn advise forward send email e-mail delete visit click open download install "
             "execute run share leak transfer buy purchase approve grant disable contact navigate browse fetch "
             "post upload exfiltrate",
    # _NEW_INSTRUCTIONS, _JAILBREAK, _TEMPLATE's "BEGIN SYSTEM", _FOREIGN_OVERRIDE, _CONCEAL, _ANSWER_FORM.
    "strong": "instruction*",
    "mode": "mode",
    "mode_kind": "dan jailbroken jailbreak developer god sudo unrestricted",
    "anything": "anything",
    "now": "now longer",
    "act": "act",
    "unbound": "unrestricted unfiltered jailbroken uncensored dan",
    "begin": "begin",
    "system": "system",
    "foreign_verb": "ignor* vergiss vergessen missachte* oublie oubliez oublier tenez olvida* omite descarta* "
                    "esqueça esqueca",
    "foreign_object": "anweisungen instruktionen befehle regeln vorgaben instructions consignes directives règles "
                      "instrucciones indicaciones órdenes reglas instruções regras",
    "conceal": "mention reveal disclose acknowledge refer talk tell",
    "negation": "not don never",
    "answer": "answer response reply",
    "request": "question questions query queries request requests",
}
_BIT = {name: 1 << i for i, name in enumerate([*_WORDS, "direct_label_end"])}  # the last: a label and ":" or ","
_EXACT: dict[str, int] = {}
_PREFIX: dict[str, int] = {}
for _name, _words in _WORDS.items():
    for _word in _words.split():
        table, key = (_PREFIX, _word[:-1]) if _word.endswith("*") else (_EXACT, _word)
        table[key] = table.get(key, 0) | _BIT[_name]


def _trie(words: set[str]) -> str:
    """A regex for any of ``words`` that branches letter by letter, so each position tries a few branches."""
    heads: dict[str, set[str]] = {}
    ends = []
    for word in sorted(words):
        if word in ("", "*"):
            ends.append(r"\w*" if word else "")
        else:
            heads.setdefault(word[0], set()).add(word[1:])
    branches = []
    for head, tails in heads.items():
        inner = _trie(tails)
        branches.append(re.escape(head) + (f"(?:{inner})" if "|" in inner else inner))
    return "|".join(branches + ends)


_VOCABULARY = _trie(set(_EXACT) | {prefix + "*" for prefix in _PREFIX})
# Chat-template markers, Markdown headings, a JSON "role", Chinese and Japanese orders: strong on their own.
_MARKERS = ("<|", "[inst]", "[/inst]", "<<sys>>", "<</sys>>", "<sources>", "</source>", "</sources>", "<system>",
            "</system>", "<instruction>", "<instructions>", "</instruction>", "</instructions>", "##", '"role"',
            "\"role'", "'role\"", "'role'", "忽略", "无视", "無視", "忘记", "忘記", "忘掉", "不要理", "指示", "命令",
            "ルール", "プロンプト")
_MARKER = "|".join(map(re.escape, _MARKERS)) + r"|<source\b"
# Text is scanned lower-cased, which reads letters as the rules' IGNORECASE does except for these three
# (dotted and dotless i, long s); a text with one is scanned case-insensitively instead.
_ODD = re.compile("[\u0130\u0131\u017f]")
_SCANS = (re.compile(rf"\b(?:{_VOCABULARY})\b"), re.compile(_MARKER))
_SCANS_ODD = (re.compile(rf"\b(?:{_VOCABULARY})\b", re.IGNORECASE), re.compile(_MARKER, re.IGNORECASE))
# What follows a role or direct label ("system:", "Model,"); a quote mark may open a passage the rules blank.
_LABEL_END = re.compile(r"\s*[,:\"“'‘`«]")
_LABELS = _BIT["direct_label"] | _BIT["role_label"]


@lru_cache(maxsize=8192)
def _word_bits(word: str) -> int:
    """The classes of one cue word as the scan found it."""
    key = word.lower().replace("i\u0307", "i").replace("\u0131", "i").replace("\u017f", "s")
    bits = _EXACT.get(key, 0)
    for prefix, prefix_bits in _PREFIX.items():
        if key.startswith(prefix):
            bits |= prefix_bits
    return bits


def sentence_cues(text: str, spans: list[tuple[int, int]]) -> list[int]:
    """Per span of ``text`` (sorted, not overlapping), the cue classes it holds, as bits for ``may_order``
    and ``may_address``. Example: ``sentence_cues("Otters eat fish.", [(0, 16)]) == [0]``
    """
    found = [0] * len(spans)
    odd = bool(_ODD.search(text))
    scanned = text if odd else text.lower()  # same length: no odd letter changes it
    words, markers = _SCANS_ODD if odd else _SCANS
    for i, match in _in_spans(words.finditer(scanned), spans):
        bits = _word_bits(match.group(0))
        if bits & _LABELS and _LABEL_END.match(scanned, match.end()):
            bits |= (_BIT["strong"] if bits & _BIT["role_label"] else 0) | _BIT["direct_label_end"]
        found[i] |= bits
    for i, _ in _in_spans(markers.finditer(scanned), spans):
        found[i] |= _BIT["strong"]
    return found


def _in_spans(matches, spans: list[tuple[int, int]]):
    """(index of the span holding its start, match) for each match inside a span."""
    i, n = 0, len(spans)
    for match in matches:
        at = match.start()
        while i < n and spans[i][1] <= at:
            i += 1
        if i == n:
            return
        if at >= spans[i][0]:  # not in the whitespace between sentences
            yield i, match


def _masks(*terms: str) -> tuple[int, ...]:
    """Each term (class names separated by spaces, all needed together) as one bit mask."""
    return tuple(sum(_BIT[name] for name in term.split()) for term in terms)


# What the rules need, as combinations of classes: a sentence holding none of them is left alone.
_NAMES_AI = ("ai", "ai_adj noun", "noun proc", "greet addressee", "you you_role")  # _AI, _ADDRESS
_DIRECT = ("direct_label_end", "direct", "proc this doc")
_ANSWERING = ("when answering", "det output", "det question", "this doc", "user question", "user prompt",
              "when user")
_ORDER_MASKS = _masks("strong", *_NAMES_AI, "override object", "you now", "mode mode_kind", "anything now",
                      "act unbound", "begin system", "foreign_verb foreign_object", "answer request",
                      "conceal negation this", "conceal negation these",
                      *(f"order {term}" for term in _DIRECT + _ANSWERING))
_ADDRESS_MASKS = _masks("strong", *_NAMES_AI, *_DIRECT)


def may_order(bits: int) -> bool:
    """False when a sentence with these cues cannot be marked by ``addresses_ai`` without an earlier order."""
    return bool(bits) and any(bits & mask == mask for mask in _ORDER_MASKS)


def may_address(bits: int) -> bool:
    """False when a sentence with these cues is no address to AI or role label (_ADDRESS, _DIRECT, _ROLE)."""
    return bool(bits) and any(bits & mask == mask for mask in _ADDRESS_MASKS)
