"""Loading files into Documents: formats, metadata, bad input. Fixtures are real files built in tmp_path."""
from __future__ import annotations

import builtins
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.documents import (
    SUPPORTED_SUFFIXES, Document, SkipFile, SkippedFile, discover_files, load_file, load_paths,
)
from rag.errors import InputPathError, RagError
from rag.loaders import decode_text, looks_binary
from rag.metadata import is_date_line, looks_like_headline, parse_date, text_metadata

ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = ROOT / "seeds" / "000_003981b1cdb900f2.txt"
SEED_TITLE = "Japan, China discuss export controls as Tokyo balances US alliance and Beijing ties"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def reasons(report) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in report.skipped}


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    if title:
        pdf.setTitle(title)
    for lines in pages:
        for row, line in enumerate(lines):
            pdf.drawString(72, 720 - 20 * row, line)
        pdf.showPage()
    pdf.save()
    return path


def make_docx(path: Path, paragraphs: list[str], title: str | None = None) -> Path:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if title:
        document.core_properties.title = title
    document.save(str(path))
    return path


# --- the seed article -------------------------------------------------------------------------------


def test_seed_article_metadata_and_untouched_text():
    doc = load_file(SEED_FILE, 50)
    assert doc.title == SEED_TITLE
    assert doc.date == "2025-09-18"
    assert doc.url == "https://www.meti.go.jp/english/press/2025/0910_001.html"
    assert doc.text == SEED_FILE.read_text(encoding="utf-8")  # header and URL lines stay in the text
    assert doc.content_hash == hashlib.sha256(doc.text.encode("utf-8")).hexdigest()
    assert doc.doc_id == doc.content_hash[:16]
    assert doc.size == SEED_FILE.stat().st_size
    assert doc.path == str(SEED_FILE.resolve())
    assert doc.pages == [] and doc.page_at(10) is None and doc.encoding is None


# --- metadata from text, in several header styles ----------------------------------------------------


@pytest.mark.parametrize("text, title, date, url", [
    ("Business | September 18, 2025\n\nRates hold steady as inflation cools\n\nThe bank kept rates.\n\n"
     "Source: https://example.com/rates", "Rates hold steady as inflation cools", "2025-09-18",
     "https://example.com/rates"),
    ("2024-03-05\nMarket update: chip stocks rally\n\nShares rose on Tuesday.\nhttps://news.example.org/chips\n",
     "Market update: chip stocks rally", "2024-03-05", "https://news.example.org/chips"),
    ("Ports reopen after storm\nBy Jane Doe | Sept. 5, 2024\n\nThe ports reopened.\n\nURL: <https://x.org/ports>\n",
     "Ports reopen after storm", "2024-09-05", "https://x.org/ports"),
    ("https://blog.example.net/post-1\n\ntrade-policy\n5 Mar 2023\n\nWhy tariffs matter\n\nTariffs are taxes.\n",
     "Why tariffs matter", "2023-03-05", "https://blog.example.net/post-1"),
    ("Updated: 2 Feb 2024\nPublished: 1st February 2024\n\nNew rules for exporters\n\nText.\n",
     "New rules for exporters", "2024-02-01", None),
    ("On 18 September 2025 officials from both countries met in Tokyo to discuss a long list of topics.\n\n"
     "More prose follows here.\n", None, None, None),
])
def test_text_metadata_header_styles(text, title, date, url):
    found = text_metadata(text)
    assert (found.title, found.date, found.url) == (title, date, url)


def test_markdown_front_matter_wins_and_heading_otherwise(tmp_path):
    front = write(tmp_path / "front.md", '---\ntitle: "Front Matter Title"\ndate: 2023-01-02T08:00:00Z\n'
                                         "url: https://x.org/front\n---\n\n# Heading Title\n\nBody.\n")
    heading = write(tmp_path / "heading.md", "Intro sentence that is long and ends like a paragraph does.\n\n"
                    "```bash\n# not a heading\n```\n\n# Real Heading\n\nPublished: 2 January 2023\n")
    doc = load_file(front, 50)
    assert (doc.title, doc.date, doc.url) == ("Front Matter Title", "2023-01-02", "https://x.org/front")
    assert doc.text.startswith("---\ntitle:")  # front matter stays in the text
    assert (load_file(heading, 50).title, load_file(heading, 50).date) == ("Real Heading", "2023-01-02")


def test_title_falls_back_to_humanised_file_name(tmp_path):
    path = write(tmp_path / "annual_report-2024.txt",
                 "This report covers the year in some detail and starts with a sentence, as reports do.\n")
    doc = load_file(path, 50)
    assert (doc.title, doc.date, doc.url) == ("Annual report 2024", None, None)


@pytest.mark.parametrize("value, iso", [
    ("18 September 2025", "2025-09-18"), ("September 18, 2025", "2025-09-18"), ("2025-09-18", "2025-09-18"),
    ("18 Sep 2025", "2025-09-18"), ("Sept. 18, 2025", "2025-09-18"), ("Thursday, 18th of September 2025", "2025-09-18"),
    ("2025/9/8", "2025-09-08"), ("2025-09-18T10:00:00+09:00", "2025-09-18"), ("31 February 2025", None),
    ("version 3 of 12", None), ("", None),
])
def test_parse_date_formats(value, iso):
    assert parse_date(value) == iso


def test_dateline_and_headline_shapes():
    assert is_date_line("export-controls 18 September 2025")
    assert is_date_line("Posted by the editorial team on March 3, 2021")
    assert not is_date_line("The ministry said on 18 September 2025 that talks with China went well.")
    assert looks_like_headline(SEED_TITLE)
    assert not looks_like_headline("This is a sentence that ends like a paragraph.")
    assert not looks_like_headline("word " * 40)


# --- formats -------------------------------------------------------------------------------------------


def test_pdf_pages_title_and_page_at(tmp_path):
    path = make_pdf(tmp_path / "report.pdf", [["Alpha text on the first page."], ["Beta text on the second page."]],
                    title="Quarterly Export Report")
    doc = load_file(path, 50)
    assert doc.title == "Quarterly Export Report"
    assert doc.text == "Alpha text on the first page.\n\nBeta text on the second page."
    assert doc.pages == [(0, 1), (doc.text.index("Beta"), 2)]
    assert doc.page_at(0) == 1 and doc.page_at(doc.text.index("first")) == 1
    assert doc.page_at(doc.text.index("Beta")) == 2 and doc.page_at(len(doc.text) - 1) == 2


def test_pdf_without_title_uses_first_line_and_skips_blank_pages(tmp_path):
    path = make_pdf(tmp_path / "scan.pdf", [["Customs Notice 12"], [], ["Third page text."]])
    doc = load_file(path, 50)
    assert doc.title == "Customs Notice 12"  # reportlab's placeholder "untitled" is ignored
    assert doc.page_at(doc.text.index("Third")) == 3


def test_corrupt_and_truncated_pdf_are_skipped(tmp_path):
    good = make_pdf(tmp_path / "good.pdf", [["Some text."]]).read_bytes()
    write(tmp_path / "docs" / "garbage.pdf", b"%PDF-1.4 this is not a pdf")
    write(tmp_path / "docs" / "truncated.pdf", good[: len(good) // 3])
    report = load_paths([tmp_path / "docs"])
    assert report.documents == []
    assert all(r.startswith("cannot parse PDF: ") for r in reasons(report).values())
    assert set(reasons(report)) == {"garbage.pdf", "truncated.pdf"}


def test_docx_core_title_and_first_line(tmp_path):
    titled = make_docx(tmp_path / "a.docx", ["Opening paragraph.", "Second paragraph."], title="Core Title")
    untitled = make_docx(tmp_path / "b.docx", ["Trade Briefing", "The briefing text follows."])
    doc = load_file(titled, 50)
    assert doc.title == "Core Title"
    assert doc.text == "Opening paragraph.\n\nSecond paragraph."
    assert load_file(untitled, 50).title == "Trade Briefing"
    with pytest.raises(SkipFile, match="cannot parse DOCX"):
        load_file(write(tmp_path / "bad.docx", b"PK\x03\x04 broken zip"), 50)


HTML = """<!DOCTYPE html><html><head><title>Ignored | Site</title>
<meta property="og:title" content="Tokyo and Beijing talk trade">
<meta property="article:published_time" content="2025-09-18T09:00:00+09:00">
<link rel="canonical" href="https://news.example.com/tokyo-beijing">
<style>body { color: red }</style><script>var secret = "<b>no</b>";</script></head>
<body><nav><a href="/">Home</a> <a href="/news">News</a></nav>
<h1>Tokyo and <em>Beijing</em> talk trade</h1><p>First&nbsp;paragraph with <b>bold</b> text.</p>
<!-- a comment --><ul><li>one</li><li>two</li></ul><p>Line<br>break</p>
<noscript>Enable JS</noscript><template><p>hidden</p></template></body></html>"""


def test_html_text_and_metadata(tmp_path):
    doc = load_file(write(tmp_path / "page.html", HTML), 50)
    assert doc.text == "Tokyo and Beijing talk trade\n\nFirst paragraph with bold text.\n\none\ntwo\n\nLine\nbreak"
    assert "<" not in doc.text and "secret" not in doc.text and "Home" not in doc.text
    assert (doc.title, doc.date, doc.url) == ("Tokyo and Beijing talk trade", "2025-09-18",
                                              "https://news.example.com/tokyo-beijing")


def test_html_fallbacks_title_tag_and_time_element(tmp_path):
    page = ("<html><head><title>Plain\n  Title</title></head><body><p>Posted <time datetime='2021-06-01'>June 1"
            "</time></p><p>Body text here.</p></body></html>")
    doc = load_file(write(tmp_path / "plain.htm", page), 50)
    assert (doc.title, doc.date, doc.url) == ("Plain Title", "2021-06-01", None)


# --- text decoding --------------------------------------------------------------------------------------


def test_cp1252_text_is_decoded_and_noted(tmp_path):
    original = "Café naïve – “quoted” résumé\nA second line about the café.\n"
    path = write(tmp_path / "legacy.txt", original.encode("cp1252"))
    report = load_paths([path])
    doc = report.documents[0]
    assert doc.text == original and doc.encoding == "cp1252"
    assert report.notes == [f"{path.resolve()}: not valid UTF-8, decoded as cp1252"]


def test_bom_and_line_endings_are_normalised_before_hashing(tmp_path):
    crlf = write(tmp_path / "crlf.txt", b"\xef\xbb\xbfHeadline\r\n\r\nBody.\rMore.\r\n")
    lf = write(tmp_path / "lf.txt", "Headline\n\nBody.\nMore.\n")
    utf16 = write(tmp_path / "wide.txt", "Headline\n\nBody.\nMore.\n".encode("utf-16"))
    docs = [load_file(p, 50) for p in (crlf, lf, utf16)]
    assert docs[0].text == "Headline\n\nBody.\nMore.\n" and docs[0].encoding is None
    assert len({d.content_hash for d in docs}) == 1
    assert docs[2].encoding == "utf-16"


def test_binary_detection():
    assert looks_binary(b"text\x00more")
    assert looks_binary(bytes(range(1, 32)) * 10)
    assert not looks_binary(b"plain text\twith tabs\r\nand \x1b[1mcolour\x1b[0m")
    with pytest.raises(SkipFile, match="binary content"):
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")


# --- bad input ----------------------------------------------------------------------------------------


def test_mixed_folder_is_never_fatal(tmp_path):
    folder = tmp_path / "docs"
    write(folder / "good.txt", "Good headline\n\nGood body.\n")
    write(folder / "junk.txt", os.urandom(4096) + b"\x00")
    write(folder / "controls.txt", bytes(range(1, 9)) * 200)
    write(folder / "empty.txt", b"")
    write(folder / "blank.md", "  \n\n\t\n")
    write(folder / "data.xyz", "unsupported")
    write(folder / "README", "no extension")
    write(folder / "big.txt", "x" * 20000)
    report = load_paths([folder], max_file_mb=0.01)
    assert [Path(d.path).name for d in report.documents] == ["good.txt"]
    assert reasons(report) == {
        "junk.txt": "binary content, not text", "controls.txt": "binary content, not text",
        "empty.txt": "empty file", "blank.md": "empty file", "data.xyz": "unsupported type .xyz",
        "README": "unsupported type (no extension)", "big.txt": "larger than 0.01 MB (RAG_MAX_FILE_MB)",
    }
    assert all(Path(s.path).is_absolute() for s in report.skipped)


def test_large_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = write(tmp_path / "huge.txt", "y" * 5000)
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(f) or real_open(f, *a, **k))
    with pytest.raises(SkipFile, match=r"larger than 0\.002 MB"):
        load_file(path, 0.002)
    assert str(path) not in map(str, opened)


def test_unreadable_file_simulated(tmp_path, monkeypatch):
    # Tests may run as root, whom chmod 000 does not stop; simulate the error the OS would raise.
    locked = write(tmp_path / "docs" / "locked.txt", "Secret headline\n\nSecret body.\n")
    write(tmp_path / "docs" / "open.txt", "Open headline\n\nOpen body.\n")
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if Path(str(file)).name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    report = load_paths([tmp_path / "docs"])
    assert [Path(d.path).name for d in report.documents] == ["open.txt"]
    assert report.skipped == [SkippedFile(str(locked.resolve()), "permission denied")]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_chmod(tmp_path):
    path = write(tmp_path / "locked.txt", "text")
    path.chmod(0)
    try:
        assert reasons(load_paths([path])) == {"locked.txt": "permission denied"}
    finally:
        path.chmod(0o644)


def test_file_disappearing_between_discover_and_load(tmp_path, monkeypatch):
    import rag.documents as documents

    folder = tmp_path / "docs"
    write(folder / "stays.txt", "Stays\n\nBody.\n")
    gone = write(folder / "gone.txt", "Gone\n\nBody.\n")
    files, _ = discover_files([folder])
    gone.unlink()
    with pytest.raises(SkipFile, match="disappeared during ingest"):
        load_file(files[0], 50)

    write(folder / "gone.txt", "Gone again\n")
    real_discover = documents.discover_files

    def discover_then_delete(paths):
        found = real_discover(paths)
        (folder / "gone.txt").unlink()
        return found

    monkeypatch.setattr(documents, "discover_files", discover_then_delete)
    report = load_paths([folder])
    assert reasons(report) == {"gone.txt": "disappeared during ingest"}
    assert [Path(d.path).name for d in report.documents] == ["stays.txt"]


def test_missing_paths_and_empty_folders_raise_naming_them(tmp_path):
    (tmp_path / "empty").mkdir()
    write(tmp_path / "hidden-only" / ".DS_Store", b"\x00")
    with pytest.raises(InputPathError, match="no such file or folder: .*nowhere"):
        discover_files([tmp_path / "nowhere"])
    with pytest.raises(InputPathError) as info:
        load_paths([tmp_path / "empty", tmp_path / "hidden-only", tmp_path / "missing.txt"])
    message = str(info.value)
    assert str(tmp_path / "empty") in message and str(tmp_path / "hidden-only") in message
    assert str(tmp_path / "missing.txt") in message
    assert issubclass(InputPathError, RagError) and issubclass(SkipFile, RagError)


def test_nested_folders_sorted_hidden_ignored_and_files_listed_once(tmp_path):
    root = tmp_path / "corpus"
    for relative in ("b.md", "a.txt", "sub/z.html", "sub/deeper/c.docx", ".hidden.txt", ".git/config.txt",
                     "sub/.cache/x.txt", "sub/notes.xyz"):
        write(root / relative, "x")
    files, skipped = discover_files([root, root / "a.txt"])
    assert [f.relative_to(root.resolve()).as_posix() for f in files] == [
        "a.txt", "b.md", "sub/deeper/c.docx", "sub/z.html"]
    assert skipped == [SkippedFile(str((root / "sub/notes.xyz").resolve()), "unsupported type .xyz")]
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"} == SUPPORTED_SUFFIXES


def test_identical_content_under_two_names_has_one_hash(tmp_path):
    text = "Same headline\n\nSame body text.\n"
    report = load_paths([write(tmp_path / "one.txt", text), write(tmp_path / "sub" / "two.md", text)])
    first, second = report.documents
    assert first.path != second.path
    assert first.content_hash == second.content_hash and first.doc_id == second.doc_id


def test_page_at_bisects_page_starts():
    doc = Document("id", "hash", "a" * 30, ["/x.pdf"], "T", size=30, pages=[(0, 1), (10, 2), (20, 5)])
    assert [doc.page_at(o) for o in (0, 9, 10, 19, 20, 29)] == [1, 1, 2, 2, 5, 5]


@pytest.mark.slow  # a fresh interpreter
def test_loading_modules_import_no_parsers():
    code = ("import sys, rag.documents; "
            "print(sorted(m for m in ('bs4', 'pypdf', 'docx2txt', 'charset_normalizer') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
