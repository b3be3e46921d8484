"""The page's stylesheet and script: badges, source cards, the library, readable in light and dark mode.

Colours that carry meaning (the highlighted sentence, badges) set both the background and the text colour,
so they stay readable whatever the theme's text colour is; the rest follows the theme's own variables.
Example: ``gr.Blocks(...).launch(css=CSS, js=PAGE_JS)``
"""
from __future__ import annotations

# The highlight of a supporting sentence: dark text on pale yellow in both themes (contrast about 14:1).
MARK_BACKGROUND = "#fde68a"
MARK_TEXT = "#1c1917"

CSS = f"""
.rag-text {{ line-height: 1.55; }}
.rag-cite {{ display: inline-block; margin: 0 1px 0 3px; padding: 0 5px; border-radius: 6px; font-size: 0.8em;
  font-weight: 600; background: #e0e7ff; color: #3730a3 !important; text-decoration: none !important;
  vertical-align: super; line-height: 1.3; cursor: pointer; }}
.rag-cite-missing {{ background: #e5e7eb; color: #374151 !important; }}
.rag-unsupported {{ text-decoration: underline dotted #d97706; }}
.rag-warn, .rag-warn-note, .rag-rel-warn {{ color: #b45309; }}
.dark .rag-warn, .dark .rag-warn-note, .dark .rag-rel-warn {{ color: #fbbf24; }}
.rag-warn {{ cursor: help; margin-left: 2px; }}
.rag-warn-note {{ font-size: 0.9em; margin-top: 6px; }}
.rag-sources {{ margin-top: 10px; border-top: 1px solid var(--border-color-primary); padding-top: 6px;
  font-size: 0.92em; }}
.rag-sources-title {{ font-weight: 600; margin-bottom: 4px; }}
.rag-doc {{ margin: 6px 0; padding: 6px 8px; border: 1px solid var(--border-color-primary); border-radius: 8px;
  background: var(--background-fill-secondary); }}
.rag-doc-head {{ font-weight: 600; word-break: break-word; }}
.rag-src-date, .rag-src-path, .rag-src-where {{ font-weight: normal; color: var(--body-text-color-subdued); }}
.rag-src-link {{ font-weight: normal; word-break: break-all; }}
.rag-card {{ margin: 4px 0 0; padding: 4px 6px; border-radius: 6px; background: var(--background-fill-primary); }}
.rag-card summary, .rag-more > summary {{ cursor: pointer; }}
.rag-card-head {{ display: inline; }}
.rag-src-num {{ display: inline-block; min-width: 1.5em; text-align: center; border-radius: 6px;
  background: #e0e7ff; color: #3730a3; }}
.rag-relevance {{ font-size: 0.9em; }}
.rag-rel-good {{ color: #15803d; }}
.dark .rag-rel-good {{ color: #4ade80; }}
.rag-rel-weak {{ color: var(--body-text-color-subdued); }}
.rag-snippet {{ display: block; margin-top: 2px; }}
.rag-card[open] .rag-snippet {{ display: none; }}  /* the whole passage shows instead */
.rag-flash {{ outline: 2px solid #a5b4fc; }}
.rag-passage {{ white-space: pre-wrap; margin: 4px 0 8px; padding: 6px 10px; border-left: 3px solid #a5b4fc;
  color: inherit; }}
.rag-passage mark, .rag-snippet mark {{ background: {MARK_BACKGROUND}; color: {MARK_TEXT}; padding: 0 1px; }}
.rag-copy {{ margin-top: 6px; font-size: 0.85em; padding: 2px 10px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); color: inherit; }}
.rag-copy-text {{ display: none; }}
.rag-more-note {{ color: var(--body-text-color-subdued); font-style: italic; }}
.rag-error {{ color: #991b1b; background: #fef2f2; border: 1px solid #fecaca; padding: 8px 10px; border-radius: 6px; }}
.rag-upload-error {{ color: #991b1b; margin: 2px 0; }}
.rag-upload-warn {{ color: #b45309; margin: 2px 0; }}
.rag-upload-ok {{ color: #166534; margin: 2px 0; }}
.dark .rag-upload-error {{ color: #fca5a5; }}
.dark .rag-upload-warn {{ color: #fbbf24; }}
.dark .rag-upload-ok {{ color: #86efac; }}
.rag-status {{ display: grid; grid-template-columns: 1fr; gap: 2px; font-size: 0.92em; }}
.rag-stat span {{ color: var(--body-text-color-subdued); }}
.rag-library {{ width: 100%; font-size: 0.88em; border-collapse: collapse; }}
.rag-library th, .rag-library td {{ text-align: left; padding: 3px 4px;
  border-bottom: 1px solid var(--border-color-primary);
  vertical-align: top; word-break: break-word; }}
.rag-library-wrap {{ max-height: 320px; overflow: auto; }}
.rag-library th {{ white-space: nowrap; }}
#chat {{ flex-grow: 1; }}
"""

# Click handlers (a [n] badge opens its card; Copy puts the answer's plain text on the clipboard) and the
# scroll to each new question, which gradio skips once the reader has scrolled (opened a source, say).
PAGE_JS = """
() => {
  const copyText = (text, done) => {
    const fallback = () => {
      const area = document.createElement("textarea");
      area.value = text; document.body.appendChild(area); area.select();
      try { document.execCommand("copy"); done(); } finally { area.remove(); }
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  };
  document.addEventListener("click", (event) => {
    const el = event.target && event.target.closest ? event.target : null;
    if (!el) return;
    const copy = el.closest(".rag-copy");
    if (copy) {
      event.preventDefault();
      const source = copy.parentElement.querySelector(".rag-copy-text");
      copyText(source ? source.textContent : "", () => {
        copy.textContent = "Copied"; setTimeout(() => { copy.textContent = "Copy"; }, 1500);
      });
      return;
    }
    const link = el.closest("a.rag-cite");
    if (!link) return;
    const target = document.getElementById((link.getAttribute("href") || "").slice(1));
    if (!target) return;
    event.preventDefault();
    for (let d = target; d; d = d.parentElement && d.parentElement.closest("details")) d.open = true;
    target.scrollIntoView({block: "nearest"});
    target.classList.add("rag-flash");
    setTimeout(() => target.classList.remove("rag-flash"), 1500);
  });
  let asked = 0;
  new MutationObserver(() => {
    const questions = document.querySelectorAll("#chat .rag-question");
    if (questions.length > asked) questions[questions.length - 1].scrollIntoView({block: "start"});
    asked = questions.length;
  }).observe(document.body, {subtree: true, childList: true});
}
"""
