"""Rendering the report: a :class:`~rlselector.bench.document.Document` to one self-contained HTML page
and to Markdown, and rows to CSV.

Every text comes from the results directory (method, class and dataset names, file names), so
nothing is trusted: HTML escapes it; Markdown escapes its markup and HTML characters (a crafted
class name renders as text, never as a tag or a link); a CSV text cell that a spreadsheet would run
as a formula is prefixed with ``'``.
"""

from __future__ import annotations

import base64
import csv
import html as _html
import io
import re
from collections.abc import Iterable
from typing import Any

from .document import Document, Figure, Heading, Pre, Text
from .stats import BASELINE, Table

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a CSV cell as a formula."""
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|])")


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------
def html(document: Document) -> str:
    escape = _html.escape
    parts, toc = [], []
    for index, block in enumerate(document.blocks):
        if isinstance(block, Heading):
            parts.append(f'<h{block.level} id="s{index}">{escape(block.text)}</h{block.level}>')
            if block.level in (2, 3):
                toc.append(f'<li class="l{block.level}"><a href="#s{index}">{escape(block.text)}</a></li>')
        elif isinstance(block, Text):
            parts.append(f"<p>{escape(block.text)}</p>")
        elif isinstance(block, Table):
            parts.append(f'<div class="table">{table_html(block)}</div>')
        elif isinstance(block, Figure):
            data = base64.b64encode(block.png).decode()
            parts.append(f'<figure><img alt="{escape(block.caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{escape(block.caption)}</figcaption></figure>")
        elif isinstance(block, Pre):
            parts.append(f"<details open><summary>{escape(block.title)}</summary><pre>{escape(block.text)}</pre></details>")
    if toc:  # contents after the title and the overview
        parts.insert(2, f'<nav><b>Contents</b><ul>{"".join(toc)}</ul></nav>')
    return f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(document.title)}</title><style>{_CSS}</style></head>\n<body>\n" \
           + "\n".join(parts) + "\n</body></html>\n"


def table_html(table: Table) -> str:
    escape = _html.escape
    head = "".join(f"<th>{escape(table.column_label(c))}</th>" for c in table.columns)
    body = []
    for row in [*table.references, *table.rows]:
        cls = ' class="ref"' if row in table.references else ""
        cells = []
        for c in table.columns:
            e = table.entry(row, c)
            tip = f' title="n={e.n}; p vs {BASELINE} = {e.p:.3g} ({e.test} t-test)"' if e is not None and e.p is not None else ""
            cells.append(f"<td{tip}>{entry_text(table, row, c, bold=('<b>', '</b>'))}</td>")
        body.append(f"<tr{cls}><th>{escape(table.row_label(row))}</th>{''.join(cells)}</tr>")
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (f"<h4>{escape(table.title)}</h4><table><thead><tr><th>{escape(table.row_name)}</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{note}")


def entry_text(table: Table, row: Any, column: Any, *, bold: tuple[str, str] = ("**", "**")) -> str:
    """An entry as ``mean ± std`` (std only over several seeds) or ``mean [low, high]`` when it holds
    an interval; bold when best, ``*`` when significant; "–" when absent."""
    e = table.entry(row, column)
    if e is None:
        return "–"
    if e.low is not None:
        text = f"{table.fmt.format(e.mean)} [{table.fmt.format(e.low)}, {table.fmt.format(e.high)}]"
    else:
        spread = table.fmt.replace("{:+", "{:")  # a signed format is for the mean: the std has no sign
        text = table.fmt.format(e.mean) + (f" ± {spread.format(e.std)}" if e.n > 1 else "")
    if e.best:
        text = f"{bold[0]}{text}{bold[1]}"
    if e.significant:
        text += " *"
    return text


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------
def markdown(document: Document) -> str:
    parts = []
    for block in document.blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {md_text(block.text)}\n")
        elif isinstance(block, Text):
            parts.append(md_text(block.text) + "\n")
        elif isinstance(block, Table):
            parts.append(table_markdown(block))
        elif isinstance(block, Figure):
            parts.append(f"![{md_text(block.caption)}](figures/{block.name}.png)\n")
        elif isinstance(block, Pre):
            fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", block.text)), default=0))  # longer than any run inside
            parts.append(f"{md_text(block.title)}:\n\n{fence}\n{block.text}\n{fence}\n")
    return "\n".join(parts)


def table_markdown(table: Table) -> str:
    header = [table.row_name, *(table.column_label(c) for c in table.columns)]
    lines = [f"#### {md_text(table.title)}", "", "| " + " | ".join(map(md_text, header)) + " |", "|" + "---|" * len(header)]
    for row in [*table.references, *table.rows]:
        lines.append("| " + " | ".join([md_text(table.row_label(row)), *(entry_text(table, row, c) for c in table.columns)]) + " |")
    if table.note:
        lines += ["", md_text(table.note)]
    return "\n".join(lines) + "\n"


def md_text(text: str) -> str:
    """``text`` as literal Markdown on one line: ``<>&`` as HTML entities, markup characters backslashed."""
    text = " ".join(str(text).splitlines())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _html.escape(text, quote=False))


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------
def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    """The rows as CSV, a header of every key in first-seen order; formula-like text cells neutralised."""
    rows = [{k: _inert(v) for k, v in row.items()} for row in rows]
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields or ["empty"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _inert(value: Any) -> Any:
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value


_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1250px; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; } h4 { margin-bottom: 0.3em; }
div.table { display: inline-block; vertical-align: top; margin-right: 2.5em; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
thead th { background: #f0f0f0; } tbody th { text-align: left; background: #fafafa; }
tr.ref td, tr.ref th { background: #eef4fb; font-style: italic; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f6f6f6; padding: 0.6em; font-size: 0.8em; overflow-x: auto; }
p.note { font-size: 0.85em; color: #555; }
nav ul { margin: 0.3em 0; padding-left: 1.2em; font-size: 0.9em; } nav li.l3 { margin-left: 1.5em; list-style: circle; }
"""
