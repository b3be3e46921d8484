"""The ``rag`` command: ingest, ask, stats, eval, serve. Errors become a message and exit code 2.

Example: ``rag ingest seeds && rag ask "When did China impose the controls?" --json``
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from .config import Settings
from .errors import RagError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Answer questions from your documents, with a citation for every claim.")

IndexOption = typer.Option(None, "--index", help="Index folder (default: RAG_INDEX or indexes/default).")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _settings(index: Optional[Path], **overrides) -> Settings:
    """Settings from the environment / rag.toml, with command-line values on top (validated)."""
    given = {"index": index, **overrides}
    return Settings(**{k: v for k, v in given.items() if v is not None})


def _emit(data: dict) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders to index (folders recursively)."),
    index: Optional[Path] = IndexOption,
    prune: bool = typer.Option(False, "--prune", help="Remove indexed files that are gone from these folders."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Start a fresh index (after changing model or chunking)."),
    as_json: bool = JsonOption,
) -> None:
    """Add documents to the index; unchanged files are not embedded again."""
    from .ingest import ingest as run_ingest

    settings = _settings(index)
    report, _ = run_ingest(paths, settings.index, settings, prune=prune, rebuild=rebuild, progress=not as_json)
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
    if report.skipped:
        typer.echo(f"Skipped {len(report.skipped)} file(s):")
        for skipped in report.skipped:
            typer.echo(f"  {skipped.path}: {skipped.reason}")


@app.command()
def stats(index: Optional[Path] = IndexOption, as_json: bool = JsonOption) -> None:
    """Documents, chunks, model and size on disk of an index."""
    from .index import Index

    settings = _settings(index)
    figures = Index.load(settings.index, settings).stats(settings.index)
    if as_json:
        return _emit(figures)
    for key, value in figures.items():
        typer.echo(f"{key:>14}: {value}")


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question."),
    index: Optional[Path] = IndexOption,
    k: Optional[int] = typer.Option(None, "--top-k", help="Passages to retrieve (default RAG_TOP_K)."),
    as_json: bool = JsonOption,
) -> None:
    """Answer a question from the index, with numbered citations."""
    from .assistant import Assistant

    settings = _settings(index, top_k=k)
    assistant = Assistant.open(settings.index, settings)
    if as_json:
        return _emit(_answer_json(assistant.ask(question)))
    answer = None
    for piece in assistant.stream(question):
        if isinstance(piece, str):
            typer.echo(piece, nl=False)
        else:
            answer = piece
    typer.echo("")
    for c in answer.citations:
        flag = "" if c.supported is not False else "  (not supported by the passage)"
        dated = f", {c.date}" if c.date else ""
        page = f", p. {c.page}" if c.page else ""
        typer.echo(f"[{c.number}] {c.title}{dated} - {c.source}{page}:{c.start}-{c.end}{flag}")


def _answer_json(answer) -> dict:
    data = answer.to_dict()
    keys = ("number", "title", "source", "url", "date", "text", "start", "end", "score", "supported", "page")
    data["citations"] = [{k: c[k] for k in keys} for c in data["citations"]]
    data["sources"] = [{k: c[k] for k in keys} for c in data["sources"]]
    return data


@app.command("eval")
def evaluate(
    evalset: Path = typer.Argument(Path("evals/seed.jsonl"), help="Eval set (JSONL)."),
    index: Optional[Path] = IndexOption,
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Baseline JSON to compare against."),
    report: Optional[Path] = typer.Option(None, "--report", help="Folder for results.json and report.md."),
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
        _emit({"metrics": result.metrics, "regressions": [r.__dict__ for r in regressions], "warnings": result.warnings})
    else:
        _print_eval(result, regressions, report, baseline if update_baseline else None)
    raise typer.Exit(0 if update_baseline or not regressions else 1)


def _print_eval(result, regressions, report: Optional[Path], written: Optional[Path]) -> None:
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
    """Start the browser chat (same as `python app.py`)."""
    import runpy

    runpy.run_path(str(Path(__file__).resolve().parent.parent / "app.py"), run_name="__main__")


def main() -> None:
    """Console entry point: RagError and bad settings become one readable line and exit code 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from pydantic import ValidationError

    try:
        app(standalone_mode=False)
    except RagError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except ValidationError as exc:
        problems = "; ".join(f"RAG_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        typer.echo(f"error: invalid setting: {problems}", err=True)
        sys.exit(2)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        import click

        if isinstance(exc, click.ClickException):  # usage errors: click's own message
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("RAG_DEBUG"):
            raise
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc} (set RAG_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
