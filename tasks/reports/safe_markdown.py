"""The model's text as markdown that fetches nothing when it is shown.

Prefect's UI renders artifact markdown with raw HTML parsed (rehype-raw, then GitHub's sanitize
schema, which keeps ``<img src="https://...">``), so a steered model could make every browser that
opens an artifact call a URL of its choosing. Only two kinds of image are kept: the run's own charts
and ``data:`` URIs (``image_allowed``); every other image becomes a plain link and raw HTML is
escaped. Code (fences, indented blocks, backtick spans) is left exactly as written. The result is
parsed again and checked; if anything would still fetch, the whole text is shown as a code block.

Charts come back as ``ChartRef`` segments, never as text: nothing the model writes can stand for one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from markdown_it import MarkdownIt

from tasks.text_safety import printable


class ChartRef(NamedTuple):
    alt: str
    rel_path: str  # one of the run's charts, relative to the run folder


Segment = str | ChartRef
_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+)(?:.*?[^`])?\1(?!`)")
_PARSER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def image_allowed(src: str, charts: Iterable[str]) -> bool:
    """An image that is safe to show: an embedded ``data:image/`` URI or one of the run's charts."""
    return src.lower().startswith("data:image/") or src in set(charts)


def fence(text: str, lang: str = "") -> str:
    """A code block whose fence is longer than any backtick run inside (model code may hold ```)."""
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def safe_markdown(text: str, chart_for: Callable[[str], str | None] = lambda _: None) -> list[Segment]:
    """``text`` (the model's) as segments of markdown, with ``chart_for(src)`` naming the run's chart
    an image link means, if any."""
    text = printable(text)
    segments: list[Segment] = []
    for line, is_code in _lines(text):
        if is_code:
            segments.append(line)
            continue
        for piece, in_span in _split_code_spans(line):
            segments.extend([piece] if in_span else _prose(piece, chart_for))
    if _fetches(segments):
        return [fence(text, "text") + "\n"]
    return _merged(segments)


def safe_inline(text: str) -> str:
    """One line of untrusted text inside markdown prose: no escapes, no raw HTML, no line breaks."""
    return " ".join(_escape_html(printable(text)).split())


def render_segments(segments: Iterable[Segment]) -> str:
    """The segments as markdown with charts linked by their relative path (as report.md has them)."""
    return "".join(s if isinstance(s, str) else f"![{s.alt}]({s.rel_path})" for s in segments)


def _lines(text: str) -> Iterable[tuple[str, bool]]:
    """Each line of ``text`` (with its newline) and whether it lies in a fenced or indented code block."""
    code: set[int] = set()
    for token in _PARSER.parse(text):
        if token.type in ("fence", "code_block") and token.map:
            code.update(range(*token.map))
    for number, line in enumerate(text.splitlines(keepends=True)):
        yield line, number in code


def _split_code_spans(line: str) -> Iterable[tuple[str, bool]]:
    end = 0
    for match in _CODE_SPAN.finditer(line):
        yield line[end:match.start()], False
        yield match.group(0), True
        end = match.end()
    yield line[end:], False


def _prose(text: str, chart_for: Callable[[str], str | None]) -> list[Segment]:
    out: list[Segment] = []
    end = 0
    for match in _IMAGE.finditer(text):
        out.append(_plain(text[end:match.start()]))
        alt, src = _escape_html(match.group(1)), match.group(2)
        chart = chart_for(src)
        if chart is not None:
            out.append(ChartRef(alt, chart))
        elif src.lower().startswith("data:image/"):
            out.append(f"![{alt}]({src})")
        else:
            out.append(f"[{alt or src}]({src})")  # a link: nothing is fetched until someone clicks it
        end = match.end()
    out.append(_plain(text[end:]))
    return out


def _plain(text: str) -> str:
    """Prose between inline images: a "![" left there starts a reference-style image, escaped it
    reads as "!" and a link."""
    return _escape_html(text).replace("![", "\\![")


def _escape_html(text: str) -> str:
    return text.replace("<", "&lt;")


def _fetches(segments: list[Segment]) -> bool:
    """Whether the markdown would still hold raw HTML or an image that is not allowed."""
    charts = {s.rel_path for s in segments if isinstance(s, ChartRef)}
    tokens = _PARSER.parse(render_segments(segments))
    for token in tokens:
        if token.type == "html_block":
            return True
        for child in token.children or []:
            if child.type == "html_inline":
                return True
            if child.type == "image" and not image_allowed(str(child.attrGet("src") or ""), charts):
                return True
    return False


def _merged(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for segment in segments:
        if isinstance(segment, str) and out and isinstance(out[-1], str):
            out[-1] += segment
        elif segment != "":
            out.append(segment)
    return out
