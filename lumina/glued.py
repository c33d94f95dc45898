"""Numbers the chapters' prose pastes in with myst-nb's glue, so no markdown types a number the code holds.

A chapter glues them in a hidden cell, and its markdown pastes them by name:

    glue_paper()                                    # every claim of lumina.paper as paper.<claim id>
    glue_values(t_two_seeds=f"{T975[1]:.1f}")      # a measured or derived value, formatted once, in code
    ... top-1 {glue:text}`paper.cifar10.gap_lenet5` above LeNet-5 ...   (markdown: "+11.19 points")

The built book shows the values; JupyterLab shows the role's name where a value goes.
"""
from __future__ import annotations

from . import paper


def glue_values(**values) -> None:
    """Glue each value under its name (as text, without displaying it)."""
    from myst_nb import glue  # the book's extra: only a chapter calls this

    for name, value in values.items():
        glue(name, str(value), display=False)


def glue_paper() -> None:
    """Glue every claim of the paper as `paper.<id>`, its value as the paper prints it (`Claim.shown`)."""
    glue_values(**{f"paper.{c.id}": c.shown() for c in paper.CLAIMS})
