"""The paper's named architectures, and its parameter tables as printed.

Strides are those the paper's code used (its text does not state them): 4 layers
[1, 2, 2, 2], 3 layers [1, 2, 4], 2 layers [2, 4]. With them every named configuration
reproduces the paper's printed parameter count exactly.

Example:
    >>> from model.accounting import count_params
    >>> count_params(architecture("ResNet26-B453"))
    4992586
"""

from __future__ import annotations

from dataclasses import dataclass

from model.spec import ResNetSpec, make_spec

_C4 = [64, 128, 256, 512]

NAMED_ARCHITECTURES: dict[str, ResNetSpec] = {
    "ResNet18": make_spec(blocks=[2, 2, 2, 2], channels=_C4),
    "ResNet10": make_spec(blocks=[1, 1, 1, 1], channels=_C4),
    "ResNet12": make_spec(blocks=[2, 1, 1, 1], channels=_C4),
    "ResNet12-B": make_spec(blocks=[1, 2, 1, 1], channels=_C4),
    "ResNet14": make_spec(blocks=[3, 1, 1, 1], channels=_C4),
    "ResNet26-B453": make_spec(blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 2, 4]),
    "ResNet26-B543": make_spec(blocks=[5, 4, 3], channels=[64, 128, 256], strides=[1, 2, 4]),
    "ResNet56": make_spec(blocks=[14, 13], channels=[64, 128], strides=[2, 4]),
    "ResNet26-B453-C": make_spec(blocks=[4, 5, 3], channels=[64, 128, 192], strides=[1, 2, 4]),
    "ResNet30": make_spec(blocks=[4, 5, 5], channels=[64, 128, 192], strides=[1, 2, 4]),
    # Table 7's pool sizes: the code changed the strides with P, keeping the 1x1 pooled map.
    "ResNet26-B453-P8": make_spec(
        blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 2, 2], pool=8
    ),
    "ResNet26-B453-P2": make_spec(
        blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 4, 4], pool=2
    ),
}
"""Every architecture of the paper, by the paper's name (the code's name for B453-C)."""


class UnknownArchitectureError(KeyError):
    """A name that is not in :data:`NAMED_ARCHITECTURES`."""

    def __str__(self) -> str:
        return f"unknown architecture {self.args[0]!r}; known: " + ", ".join(NAMED_ARCHITECTURES)


def architecture(name: str) -> ResNetSpec:
    """The named architecture (case-insensitive)."""
    for known, spec in NAMED_ARCHITECTURES.items():
        if known.lower() == name.lower():
            return spec
    raise UnknownArchitectureError(name)


def paper_name(spec: ResNetSpec) -> str | None:
    """The paper's name for ``spec``, or None when the paper has no such architecture."""
    for name, known in NAMED_ARCHITECTURES.items():
        if known == spec:
            return name
    return None


@dataclass(frozen=True, slots=True)
class PaperRow:
    """One row of a parameter table as the paper prints it."""

    table: str
    printed_name: str
    printed_blocks: str
    printed_channels: str
    printed_params: int | None
    architecture: str
    """Our name of the architecture the row really describes."""
    note: str = ""


PAPER_TABLES: tuple[PaperRow, ...] = (
    PaperRow("Text", "ResNet18", "[2,2,2,2]", "[64,128,256,512]", 11_173_962, "ResNet18"),
    PaperRow("Table 1", "ResNet10", "[1,1,1,1]", "-", 4_903_242, "ResNet10"),
    PaperRow("Table 1", "ResNet12", "[2,1,1,1]", "-", 4_977_226, "ResNet12"),
    PaperRow("Table 1", "ResNet12-B", "[1,2,1,1]", "-", 5_198_666, "ResNet12-B"),
    PaperRow("Table 1", "ResNet14", "[3,1,1,1]", "-", 5_051_210, "ResNet14"),
    PaperRow("Table 3", "ResNet10", "-", "-", 4_903_242, "ResNet10"),
    PaperRow("Table 3", "ResNet26-B453", "-", "-", 4_992_586, "ResNet26-B453"),
    PaperRow(
        "Table 3",
        "ResNet56",
        "-",
        "-",
        4_818_378,
        "ResNet56",
        "blocks not printed: the code's B=[14,13] (B=[13,14] would give 5,039,818)",
    ),
    PaperRow(
        "Table 4",
        "ResNet26-B543",
        "[5,4,3]",
        "-",
        None,
        "ResNet26-B543",
        "count not printed in the paper; ours is the code's",
    ),
    PaperRow("Table 5", "ResNet26-B453", "-", "[64,128,256]", 4_992_586, "ResNet26-B453"),
    PaperRow(
        "Table 5",
        "ResNet26-B543-C",
        "-",
        "[63,128,192]",
        3_618_890,
        "ResNet26-B453-C",
        "typo twice over: it is B=[4,5,3] (not 5,4,3) and C=[64,...] (not 63)",
    ),
    PaperRow(
        "Table 5",
        "ResNet30",
        "[4,5,5]",
        "[63,128,192]",
        4_947_530,
        "ResNet30",
        "typo: C=[64,128,192] (not 63)",
    ),
    PaperRow(
        "Table 7",
        "ResNet26-B453-P8",
        "-",
        "-",
        None,
        "ResNet26-B453-P8",
        "count not printed; the code used strides [1,2,2] with P=8",
    ),
    PaperRow(
        "Table 7",
        "ResNet26-B453-P2",
        "-",
        "-",
        None,
        "ResNet26-B453-P2",
        "count not printed; the code used strides [1,4,4] with P=2",
    ),
    PaperRow(
        "Result",
        "ResNet26-B453-E6",
        "[4,5,3]",
        "[64,128,256]",
        4_992_586,
        "ResNet26-B453",
        "text gives F=[3,3,3,3,3] and K=[1,1,1,1]: lists of the wrong length for N=3",
    ),
)
"""The paper's parameter tables, row by row, with where its text is wrong."""
