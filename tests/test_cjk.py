"""Chinese and Japanese text: keyword terms, sentences, chunks, answer types, follow-ups, the multilingual
model, and bad input (mixed scripts, full-width forms, no spaces at all, very long lines)."""
from __future__ import annotations

import numpy as np
import pytest

from rag import Assistant, Settings
from rag.backends.extractive import _DATE, _NAME, _NUMBER, _answer_type, _constraints, _mentions, cite
from rag.chunking import chunk_text
from rag.errors import IndexMismatchError
from rag.evaluation.metrics import find_fact
from rag.ingest import token_offsets
from rag.keyword import STOPWORDS, KeywordIndex, tokenize
from rag.multilingual import MULTILINGUAL_MODEL
from rag.questions import condense_deterministic
from rag.terms import content_terms, mostly_cjk, segment, stemmer
from rag.text import split_sentences

JA = ("日本は2023年7月、先端半導体の製造装置など23品目を輸出管理の対象に追加した。"
      "中国政府はこの措置に強く反対した！2025年4月には十数品目が加えられた。")
ZH = "2023年7月，中国宣布对镓和锗实施出口管制。同年12月，石墨也被纳入管制范围！这些材料是半导体的关键原料？"
ENGLISH = ["China imposed the rare metals controls in July 2023.", "Gallium's price rose 5% (U.S. data), e.g. in Q3."]


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_english_keyword_terms_are_exactly_as_before():
    import bm25s

    for text in ENGLISH:
        assert segment(text) is text
        old = bm25s.tokenize([text], stopwords=STOPWORDS, stemmer=stemmer(), show_progress=False, return_ids=False)
        assert tokenize([segment(text)], return_ids=False) == old
    assert content_terms("When did China impose controls?") == {"china", "impos", "control"}


def test_cjk_runs_become_characters_and_bigrams_with_full_width_folded():
    assert segment("輸出規制").split() == ["輸", "出", "規", "制", "輸出", "出規", "規制"]
    assert segment("２０２３年ＡＢＣ").split() == ["2023", "年", "ABC"]
    assert mostly_cjk(JA) and not mostly_cjk("Tokyo (東京) is the capital.") and not mostly_cjk("")
    terms = content_terms("日本はいつ半導体の輸出規制を強化したか？")
    assert {"輸出", "規制", "半導", "導体"} <= terms and not {"いつ", "は", "か"} & terms


def test_keyword_search_over_a_mixed_corpus():
    texts = [JA, ZH, ENGLISH[0], "Unrelated text about weather in Paris."]
    index = KeywordIndex.build(texts)
    assert index.search("半導体製造装置の輸出管理", 1)[0].tolist() == [0]
    assert index.search("镓和锗的出口管制", 1)[0].tolist() == [1]
    assert index.search("rare metals controls", 1)[0].tolist() == [2]
    assert index.search("２０２３年の石墨", 1)[0].tolist() == [1]  # full-width digits in the question


def test_sentences_end_at_cjk_punctuation():
    assert sentences(JA) == [JA[:JA.index("。") + 1], "中国政府はこの措置に強く反対した！",
                             "2025年4月には十数品目が加えられた。"]
    assert len(sentences(ZH)) == 3
    assert sentences("「はい。」と答えた。次の文。") == ["「はい。」と答えた。", "次の文。"]
    assert sentences("中文句子。English here. 再一句。") == ["中文句子。", "English here.", "再一句。"]
    assert sentences("小数は３．５です．次の文") == ["小数は３．５です．", "次の文"]
    assert sentences(ENGLISH[1]) == [ENGLISH[1]]  # English rules unchanged: no split after "U.S." or "e.g."


@pytest.fixture(scope="module")
def e5():
    from rag.embedding import get_embedder

    return get_embedder(MULTILINGUAL_MODEL)


@pytest.mark.slow
@pytest.mark.parametrize("text", [
    "日本語" * 7000,  # a very long line with no spaces and no punctuation
    "ＡＢＣ１２３！？" * 2000 + "。" + "漢字かなカナ mixed English 123 " * 300,  # full-width forms, mixed scripts
    "。！？" * 3000,  # punctuation only
])
def test_bad_cjk_input_chunks_within_the_window(e5, text):
    chunks = chunk_text("d", text, token_offsets(e5), max_tokens=160, overlap_tokens=32)
    assert chunks and chunks[0].start == 0 and chunks[-1].end == len(text.rstrip())
    assert all(c.text == text[c.start:c.end] and 0 < c.n_tokens <= 160 for c in chunks)
    # Counted sentence by sentence, a text without spaces may take more tokens whole; it still fits the window.
    assert all(e5.count_tokens(c.text) + 32 <= e5.max_tokens for c in chunks[:5])


@pytest.mark.slow
def test_multilingual_model_ranks_across_languages(e5):
    passages = ["中国は2023年7月、ガリウムとゲルマニウムの輸出規制を発表した。", "今日は東京で雨が降った。",
                "2023年7月，中国宣布对镓和锗实施出口管制。", "巴黎今天天气很好。"]
    vectors = e5.encode(passages)
    assert vectors.shape == (4, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    question = e5.encode_query(["When did China restrict gallium exports?"])[0]
    assert not np.allclose(question, e5.encode(["When did China restrict gallium exports?"])[0])
    scores = vectors @ question
    assert scores[0] > scores[1] and scores[2] > scores[3]
    assert e5.max_tokens > 500 and abs(e5.count_tokens(JA) - (e5.model.token_count(JA) - 5)) <= 3


@pytest.mark.slow
def test_manifest_records_the_multilingual_model(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ja.txt").write_text(JA, encoding="utf-8")
    index_dir = tmp_path / "index"
    settings = Settings(index=index_dir, embed_model="multilingual")
    assistant = Assistant.build([docs], index_dir=index_dir, settings=settings)
    assert assistant.stats()["model"] == "multilingual"
    answer = assistant.ask("How many items did Japan add to its export controls in July 2023?")
    assert not answer.abstained and "23品目" in answer.text and answer.citations  # quotes the Japanese source
    with pytest.raises(IndexMismatchError, match="multilingual"):
        Assistant.open(index_dir, Settings(index=index_dir))


def test_answer_types_and_specifics_in_cjk_forms():
    assert _answer_type("日本はいつ輸出規制を強化したか？") is _DATE
    assert _answer_type("中国什么时候宣布管制？") is _DATE
    assert _answer_type("日本は何品目を追加したか？") is _NUMBER and _answer_type("增加了多少项？") is _NUMBER
    assert _answer_type("共同議長は誰か？") is _NAME and _answer_type("谁主持了对话？") is _NAME
    assert _DATE.search("日本は2023年7月に") and _DATE.search("２０２３年") and not _DATE.search("日本は輸出を")
    assert _NUMBER.search("十数品目") and _NUMBER.search("23品目") and _NAME.search("経済産業省が発表した")
    assert not _NUMBER.search("A380 jets") and _DATE.search("in July") and not _NAME.search("日本は")
    assert _constraints("2023年に何品目が対象になったか") == ["2023"]
    assert _mentions("2023年7月", "2023") and not _mentions("x2023y", "2023") and not _mentions("12023年", "2023")


def test_citations_facts_and_follow_ups_in_cjk():
    assert cite("日本は輸出規制を強化した。", 2) == "日本は輸出規制を強化した [2]。"
    assert find_fact("日本は２０２３年７月に規制した [1]。", ["2023年7月"]) == "2023年7月"
    assert find_fact("12023年", ["2023年"]) is None
    history = [("日本は何を規制したか？", "半導体製造装置 [1]。")]
    assert (condense_deterministic("それはいつから始まったか？", history)
            == "それはいつから始まったか？ (日本は何を規制したか)")
    standalone = "中国对镓的出口管制是什么时候开始实施的？"
    assert condense_deterministic(standalone, history) == standalone


def test_citation_checks_read_cjk_months_and_numbers():
    from rag.claims import read

    assert read("日本は2023年7月に23品目を追加した。").months == {7: "7月"}
    assert read("１２月に施行した。").months == {12: "１２月"} and read("In July 2023.").months == {7: "July"}
    assert {q.key for q in read("日本は2023年7月に23品目を追加した。").numbers} >= {"2023", "23"}
