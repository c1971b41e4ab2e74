"""report.html: the report as one self-contained page that opens anywhere, offline, as a single file.

markdown-it-py is already installed (rich depends on it), so no new dependency. Raw HTML in the
model's text is escaped rather than passed through: the page should never run what a model wrote.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import Any

from markdown_it import MarkdownIt

from tasks.reports.safe_markdown import image_allowed

_CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --code: #f6f8fa; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --code: #151b23; } }
body { font: 16px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); max-width: 54rem; margin: 2rem auto; padding: 0 1.25rem; }
h1, h2, h3 { line-height: 1.25; margin-top: 1.8em; } h1 { margin-top: 0; }
h1, h2 { border-bottom: 1px solid var(--line); padding-bottom: .3em; }
a { color: #0969da; }
img { max-width: 100%; height: auto; display: block; margin: 1em 0; }
table { border-collapse: collapse; margin: 1em 0; display: block; overflow-x: auto; font-size: .93em; }
th, td { border: 1px solid var(--line); padding: .35em .7em; text-align: left; }
th { background: var(--code); } tr:nth-child(even) td { background: color-mix(in srgb, var(--code) 60%, transparent); }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--code);
       padding: .15em .35em; border-radius: 4px; }
pre { background: var(--code); padding: .9em 1em; overflow-x: auto; border-radius: 6px; line-height: 1.45; }
pre code { padding: 0; background: none; }
blockquote { margin: 1em 0; padding: 0 1em; color: var(--muted); border-left: .25em solid var(--line); }
hr { border: 0; border-top: 1px solid var(--line); margin: 1.5em 0; }
"""


def _image_or_link(self: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
    """Allowed images render (``image_allowed``: data URIs and the run's charts, embedded here);
    any other image becomes a plain link, so opening the page fetches nothing."""
    token = tokens[idx]
    src = token.attrGet("src") or ""
    alt = self.renderInlineAsText(token.children or [], options, env)
    if src in env.get("charts", {}):
        uri = env["charts"][src](src)
        if uri is None:
            return f"<em>{html.escape(_omitted(src))}</em>"
        token.attrSet("src", uri)
        return self.image(tokens, idx, options, env)
    if image_allowed(src, ()):
        return self.image(tokens, idx, options, env)
    return f'<a href="{html.escape(src)}">{html.escape(alt or src)}</a>'


def _omitted(rel_path: str) -> str:
    return f"Chart {rel_path} omitted here to keep this page small; it is in the run folder."


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.add_render_rule("image", _image_or_link)
    return md


def render_report_html(markdown_text: str, title: str, charts: Iterable[str] = (),
                       embed: Callable[[str], str | None] | None = None) -> str:
    """A complete HTML page for ``markdown_text``.

    ``charts`` are the run's chart paths as linked in the markdown; ``embed`` turns one into a data
    URI (or None when it does not fit). Linking charts rather than embedding them before parsing
    keeps their base64 out of the parser, which scans every character (0.7 s for five charts).
    """
    env = {"charts": {c: embed for c in charts}} if embed else {}
    body = _renderer().render(markdown_text, env)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
            f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n")
