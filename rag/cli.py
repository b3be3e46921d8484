"""The ``rag`` command: ingest, ask, stats, verify, compact, eval, serve, move-store. Errors become one line and an exit
code (main).

Example: ``rag ingest seeds && rag ask "When did China impose the controls?" --json``
"""
from __future__ import annotations

import errno
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .errors import RagError

if TYPE_CHECKING:
    from .config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Answer questions from your documents, with a citation for every claim.")

IndexOption = typer.Option(None, "--index", help="Index folder (default: RAG_INDEX or indexes/default).")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _settings(index: Path | None, **overrides) -> Settings:
    """Settings from the environment / rag.toml, with command-line values on top (validated)."""
    from .config import Settings

    given = {"index": index, **overrides}
    return Settings(**{k: v for k, v in given.items() if v is not None})


def _emit(data: dict) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders to index (folders recursively)."),
    index: Path | None = IndexOption,
    prune: bool = typer.Option(False, "--prune", help="Remove indexed files that are gone from these folders."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Start a fresh index (after changing model or chunking)."),
    as_json: bool = JsonOption,
) -> None:
    """Add documents to the index; unchanged files are not embedded again."""
    from .documents import display_path
    from .ingest import ingest as run_ingest

    settings = _settings(index)
    report, _ = run_ingest([*paths], settings.index, settings, prune=prune, rebuild=rebuild, progress=not as_json)
    if as_json:
        return _emit(report.to_dict())
    typer.echo(
        f"Index {settings.index}: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {len(report.unchanged)} unchanged, {len(report.duplicates)} duplicate; "
        f"{report.chunks_embedded} new chunks embedded ({report.documents} documents, {report.chunks} chunks, "
        f"{report.seconds:.1f} s)."
    )
    for note in report.notes:
        typer.echo(f"note: {note}")
    if report.instructions:
        typer.echo(f"warning: {len(report.instructions)} document(s) hold text addressed to AI systems "
                   "(marked: never quoted as an answer, labelled as data for LLMs):")
        for marked in report.instructions:
            typer.echo(f"  {marked['path']}: \"{marked['sentence']}\"")
    if report.skipped:
        typer.echo(f"Skipped {len(report.skipped)} file(s):")
        for skipped in report.skipped:
            typer.echo(f"  {display_path(skipped.path)}: {skipped.reason}")


@app.command()
def verify(index: Path | None = IndexOption, as_json: bool = JsonOption) -> None:
    """Check an index for damage (checksums, texts, spans, ids, counts); exit 2 when it is damaged."""
    from .audit import audit

    settings = _settings(index)
    result = audit(settings.index, settings)
    if as_json:
        _emit(result)
    else:
        for problem in result["problems"]:
            typer.echo(f"{problem['file']}: {problem['problem']}")
        checked = ", ".join(f"{k} {v}" for k, v in result["checked"].items())
        verdict = "sound" if result["sound"] else f"DAMAGED ({len(result['problems'])} problem(s))"
        typer.echo(f"Index {settings.index} ({result['generation']}): {verdict}"
                   + (f"; checked {checked}" if checked else ""))
        if result.get("rebuild"):  # the files that list the index: an ingest cannot repair them
            typer.echo(f"Rebuild it with `rag ingest PATH... --index {settings.index} --rebuild`.")
        elif not result["sound"]:
            typer.echo(f"Repair it with `rag ingest PATH... --index {settings.index}` (re-reads and re-embeds what is "
                       f"damaged), or rebuild it with --rebuild.")
    raise typer.Exit(0 if result["sound"] else 2)


@app.command("move-store")
def move_store(index: Path | None = IndexOption) -> None:
    """Copy an index into the vector store RAG_VECTOR_STORE names (e.g. Milvus), without embedding again."""
    from .stores.move import move_index

    settings = _settings(index)
    moved, seconds = move_index(settings.index, settings)
    typer.echo(f"Index {settings.index}: {len(moved.chunks)} chunks of {len(moved.documents)} documents moved to "
               f"the store {settings.vector_store!r} in {seconds:.1f} s.")


@app.command()
def compact(index: Path | None = IndexOption) -> None:
    """Merge the index's parts into one and drop removed documents' rows, as a new generation."""
    import time

    from .index import Index
    from .storage import IndexLock

    settings = _settings(index)
    started = time.perf_counter()
    with IndexLock(settings.index, timeout=settings.lock_timeout):
        loaded = Index.load(settings.index, settings)
        loaded.save(settings.index, compact=True)
    typer.echo(f"Index {settings.index}: compacted, {len(loaded.documents)} documents, {len(loaded.chunks)} chunks "
               f"({time.perf_counter() - started:.1f} s).")


@app.command()
def stats(index: Path | None = IndexOption, as_json: bool = JsonOption) -> None:
    """Documents, chunks, model and size on disk of an index."""
    from .documents import display_path
    from .index import Index
    from .injection import first_marked

    settings = _settings(index)
    loaded = Index.load(settings.index, settings)
    figures = loaded.stats(settings.index)
    marked = [{"path": display_path(doc.paths[0]) if doc.paths else doc.doc_id, "count": len(doc.instructions),
               "sentence": first_marked(doc.text, doc.instructions)}
              for doc in loaded.documents.values() if doc.instructions]
    if as_json:
        return _emit({**figures, "marked": marked})
    for key, value in figures.items():
        typer.echo(f"{key:>16}: {value}")
    for item in marked:  # which documents hold text addressed to AI systems
        typer.echo(f"{'marked':>16}: {item['path']}: \"{item['sentence']}\"")


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question."),
    index: Path | None = IndexOption,
    k: int | None = typer.Option(None, "--top-k", help="Passages to retrieve (default RAG_TOP_K)."),
    as_json: bool = JsonOption,
) -> None:
    """Answer a question from the index, with numbered citations."""
    from .assistant import Assistant
    from .text import strip_markers

    settings = _settings(index, top_k=k)
    assistant = Assistant.open(settings.index, settings)
    if as_json:
        return _emit(_answer_json(assistant.ask(question)))
    response = assistant.stream(question)
    for piece in response:
        typer.echo(piece, nl=False)
    typer.echo("")
    answer = response.answer
    for check in answer.sentences:
        if not check.supported:  # say which sentence is unchecked and why, not only which source
            typer.echo(f"unsupported: {_shorten(strip_markers(check.sentence) or check.sentence)} ({check.reason})")
    for c in answer.citations:
        flag = "" if c.supported is not False else "  (not supported by the passage)"
        dated = f", {c.date}" if c.date else ""
        page = f", p. {c.page}" if c.page else ""
        typer.echo(f"[{c.number}] {c.title}{dated} - {c.source}{page}:{c.start}-{c.end}{flag}")


def _shorten(text: str, limit: int = 80) -> str:
    """One line of at most ``limit`` characters. Example: ``_shorten("a " * 60)[-1] == "…"``"""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "…"


def _answer_json(answer) -> dict:
    data = answer.to_dict()
    keys = ("number", "title", "source", "url", "date", "text", "start", "end", "score", "supported", "page")
    data["citations"] = [{k: c[k] for k in keys} for c in data["citations"]]
    data["sources"] = [{k: c[k] for k in keys} for c in data["sources"]]
    return data


@app.command("eval")
def evaluate(
    evalset: Path = typer.Argument(Path("evals/seed.jsonl"), help="Eval set (JSONL)."),
    index: Path | None = IndexOption,
    baseline: Path | None = typer.Option(None, "--baseline", help="Baseline JSON to compare against."),
    report: Path | None = typer.Option(None, "--report", help="Folder for results.json and report.md."),
    update_baseline: bool = typer.Option(False, "--update-baseline", help="Write the results as the new baseline."),
    as_json: bool = JsonOption,
) -> None:
    """Run an eval set; exit 1 when a metric or a question got worse than the baseline."""
    from .assistant import Assistant
    from .evaluation import evaluate_and_report

    settings = _settings(index)
    assistant = Assistant.open(settings.index, settings)
    result, regressions = evaluate_and_report(
        assistant, evalset, baseline_path=baseline, report_dir=report, update_baseline=update_baseline,
        progress=None if as_json else _progress_printer())
    if as_json:
        _emit({"metrics": result.metrics, "regressions": [r.__dict__ for r in regressions],
               "warnings": result.warnings})
    else:
        _print_eval(result, regressions, report, baseline if update_baseline else None)
    raise typer.Exit(0 if update_baseline or not regressions else 1)


def _print_eval(result, regressions, report: Path | None, written: Path | None) -> None:
    for warning in result.warnings:
        typer.echo(f"warning: {warning}")
    for name, value in result.metrics.items():
        typer.echo(f"{name:>28}: {value if not isinstance(value, float) else round(value, 4)}")
    timings = result.timings or {}
    if "ask_p50_ms" in timings:
        typer.echo(f"{'latency':>28}: ask p50 {timings['ask_p50_ms']:.0f} ms, p95 {timings['ask_p95_ms']:.0f} ms "
                   "(reported, not gated)")
    if report:
        typer.echo(f"report: {report / 'report.md'}")
    if written:
        typer.echo(f"baseline written: {written}")
    for regression in regressions:
        typer.echo(f"REGRESSION {regression.kind} {regression.name}: {regression.detail}")
    typer.echo("gate: " + ("FAILED" if regressions else "passed"))


def _progress_printer():
    def show(done: int, total: int, row) -> None:
        typer.echo(f"\r[{done}/{total}] {row.id:<40}", nl=False, err=True)
        if done == total:
            typer.echo("", err=True)

    return show


@app.command()
def serve() -> None:
    """Start the browser chat on RAG_HOST:RAG_PORT (same as `python app.py`)."""
    from .ui.app import main as serve_chat

    code = serve_chat()
    if code:
        raise typer.Exit(code)


@app.command("hash-password")
def hash_password(user: str = typer.Argument(..., help="The user name to log in with.")) -> None:
    """Print a `user:hash` line for the RAG_AUTH file; the password is asked for and never stored."""
    from .ui.auth import hash_password as password_hash

    if ":" in user or not user.strip():
        raise typer.BadParameter("a user name must be non-empty and without ':'")
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    typer.echo(f"{user.strip()}:{password_hash(password)}")


def main() -> None:
    """Console entry point. Exit codes: 0 done; 1 the eval gate failed or an unexpected error; 2 a usage
    error, a RagError, a bad setting or a file-system problem (one line each); 130 interrupted (143 on SIGTERM).

    Example: ``rag eval --baseline evals/baseline.json || echo "gate failed"``
    """
    # First of all: importing this module loads nothing heavy (rag/__init__ is lazy, typer aside), so from
    # here a Ctrl-C while the command loads numpy, pydantic or the model prints "interrupted", not a traceback.
    _STOPPED_BY.clear()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        code = _run()
    except KeyboardInterrupt:  # outside the command (while importing, say)
        code = 130
    if _STOPPED_BY or code == 130:
        typer.echo("interrupted", err=True)
        code = 128 + (_STOPPED_BY[0] if _STOPPED_BY else signal.SIGINT)
        # The command has unwound (locks released, half-written generations removed). Leave now: when the
        # interrupt landed inside an import, the interpreter's own shutdown would otherwise end the process
        # by re-raising SIGINT (exit status -2 instead of 130).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


# The signal that stopped the command, if any: typer turns KeyboardInterrupt into a bare exit code.
_STOPPED_BY: list[int] = []


def _on_signal(signum: int, frame) -> None:
    _STOPPED_BY.append(int(signum))
    # Unwinds through `with`/`finally`: the index lock is released and a half-written generation removed.
    raise KeyboardInterrupt


def _run() -> int:
    """Run the command; translate what it raises into a message on stderr and an exit code."""
    from pydantic import ValidationError

    try:
        result = app(prog_name="rag", standalone_mode=False)  # returns typer.Exit's code (the eval gate)
    except RagError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except ValidationError as exc:
        problems = "; ".join(f"RAG_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        typer.echo(f"error: invalid setting: {problems}", err=True)
        return 2
    except typer.TyperException as exc:  # click's usage errors (typer ships its own click): usage + message
        exc.show() if hasattr(exc, "show") else typer.echo(f"Error: {exc.format_message()}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except OSError as exc:
        if os.environ.get("RAG_DEBUG"):
            raise
        typer.echo(os_error_line(exc), err=True)
        return 2
    except Exception as exc:
        if os.environ.get("RAG_DEBUG"):
            raise
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc} (set RAG_DEBUG=1 for the traceback)", err=True)
        return 1
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


# What we were trying to do, and what fixes it, per errno.
_OS_PROBLEMS = {
    errno.ENOSPC: ("write", "Free some space and try again."),
    errno.EDQUOT: ("write", "Free some space or raise your disk quota and try again."),
    errno.EROFS: ("write", "The file system is read-only; choose a writable folder (--index)."),
    errno.EACCES: ("open", "Check its permissions, or choose another path."),
    errno.EPERM: ("open", "Check its permissions, or choose another path."),
    errno.ENOTDIR: ("use", "A part of the path is a file, not a folder; choose another path."),
    errno.EISDIR: ("open", "It is a folder where a file was expected; choose another path."),
    errno.ENOENT: ("find", "Check the path."),
    errno.EMFILE: ("open", "Too many open files; raise the limit (ulimit -n) and try again."),
}


def os_error_line(exc: OSError) -> str:
    """One line naming the path and the problem.

    Example: ``os_error_line(OSError(28, "No space left on device", "/x/y"))``
    -> ``"error: cannot write /x/y: No space left on device. Free some space and try again."``
    """
    verb, fix = _OS_PROBLEMS.get(exc.errno or 0, ("use", ""))
    problem = (exc.strerror or str(exc) or type(exc).__name__).rstrip(".")
    where = f"cannot {verb} {exc.filename}" if exc.filename else f"file system error ({type(exc).__name__})"
    return f"error: {where}: {problem}." + (f" {fix}" if fix else "")


if __name__ == "__main__":
    main()
