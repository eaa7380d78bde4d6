"""Helpers of the report tests: projects whose cells carry known classes, an HTML parser."""

from html.parser import HTMLParser

import numpy as np

# A marrow smear of 500 counted cells: 24 blasts (4.8%), M:E (24+300+76)/100 by ICSH.
MARROW = ["BLA"] * 24 + ["NGS"] * 300 + ["EBO"] * 100 + ["MON"] * 76 + ["KSC"] * 3


def store_slide(project, name, codes, version="m1"):
    """Register slide ``name`` with one model-predicted cell per code; return its id."""
    slide_id = project.register_slide(f"/private/{name}.tif", f"fp-{name}", (2000, 2000))
    classes = sorted(set(codes))
    positions = np.array([[20.0 * (i // 50), 20.0 * (i % 50)] for i in range(len(codes))])
    probabilities = np.eye(len(classes))[[classes.index(code) for code in codes]]
    project.add_predictions(slide_id, positions, probabilities, classes, version, radius=5.0)
    return slide_id


class ReportPage(HTMLParser):
    """The text of every element with an id, the rows of every table, and the language."""

    def __init__(self, text: str):
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.lang = None
        self.tags: set[str] = set()
        self._open: list[list] = []  # [id, tag, nesting of the same tag, text parts]
        self._table = None
        self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.add(tag)
        if tag == "html":
            self.lang = attributes.get("lang")
        for entry in self._open:
            if entry[1] == tag:
                entry[2] += 1
        if "id" in attributes:
            self._open.append([attributes["id"], tag, 0, []])
        if tag == "table":
            self._table = self.tables.setdefault(attributes.get("class", ""), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag):
        for entry in reversed(self._open):
            if entry[1] == tag:
                if entry[2] == 0:
                    self._open.remove(entry)
                    self.by_id[entry[0]] = "".join(entry[3]).strip()
                else:
                    entry[2] -= 1
                break
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        for entry in self._open:
            entry[3].append(data)
        if self._cell is not None:
            self._cell.append(data)

    def row(self, table: str, code: str) -> list[str]:
        """Return the row of ``table`` whose second cell (the class code) is ``code``."""
        return next(row for row in self.tables[table] if len(row) > 1 and row[1] == code)
