"""The report as a document: a list of blocks (headings, text, tables, figures, logs), rendered by
:mod:`~rlselector.bench.render` to HTML and Markdown alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from .stats import Table


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Text:
    text: str


@dataclass
class Figure:
    name: str
    """File stem under ``figures/``; unique in the document."""
    png: bytes
    caption: str


@dataclass
class Pre:
    title: str
    text: str


Block = Heading | Text | Table | Figure | Pre


@dataclass
class Document:
    blocks: list[Block] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    context: str = ""
    """The heading the next table stands under (names the table in summary.csv)."""

    def add(self, block: Block) -> None:
        if isinstance(block, Figure):  # file names stay unique however long the titles
            block.name = f"{len(self.figures) + 1:02d}-{block.name}"[:90]
        if isinstance(block, Table):
            block.context = self.context
            self.tables.append(block)
        if isinstance(block, Heading) and block.level <= 3:
            self.context = block.text
        self.blocks.append(block)

    @property
    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]

    @property
    def title(self) -> str:
        return next((b.text for b in self.blocks if isinstance(b, Heading)), "Benchmark report")
