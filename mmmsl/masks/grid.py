"""Hide-and-Seek hole masks: a grid of S x S cells, each hidden at random.

As Hide-and-Seek (Singh & Lee, ICCV 2017): the image is divided into a grid
of cells and each cell is hidden with one probability; HaS draws the cell
size from a list (16, 32, 44 or 56 px at 224 px, i.e. 14, 7, 5 or 4 cells a
side, our default ``cells``). Here the number of hidden cells ``k`` is
drawn uniformly among those whose hidden area is in the ratio bin and ``k``
cells are hidden uniformly at random, so every cell is hidden with
probability ``k / S**2`` and every mask lands in its bin; a cell count that
cannot reach the bin at this size (a coarse grid and a narrow bin) is not
drawn.
"""
from typing import Optional, Sequence

import numpy as np

from .ratio import RatioSpec, bin_counts, parse_ratio


def cell_mask(row_edges: np.ndarray,
              col_edges: np.ndarray,
              ratio: RatioSpec,
              rng: np.random.Generator,
              tries: int = 8) -> Optional[np.ndarray]:
    """Hide random cells of a grid until the hole ratio is in the bin.

    Args:
        row_edges (np.ndarray): ``(R + 1,)`` increasing pixel rows of the
            cell borders, ``0 .. H``.
        col_edges (np.ndarray): ``(C + 1,)`` the same for columns.
        ratio (str | Sequence[float]): The hole-ratio bin.
        rng (np.random.Generator): The random source.
        tries (int): Random cell orders tried (cells of unequal size can
            make an order miss a narrow bin).

    Returns:
        np.ndarray | None: ``(H, W)`` uint8 hole mask, constant on every
        cell, or None if no tried order reaches the bin.
    """
    lo, hi = parse_ratio(ratio)
    rh, cw = np.diff(row_edges), np.diff(col_edges)
    cmin, cmax = bin_counts(int(rh.sum() * cw.sum()), lo, hi)
    areas = np.outer(rh, cw).ravel()
    for _ in range(tries):
        order = rng.permutation(areas.size)
        total = np.cumsum(areas[order])
        ok = np.flatnonzero((total >= cmin) & (total <= cmax))
        if ok.size:
            cells = np.zeros(areas.size, np.uint8)
            cells[order[:int(ok[rng.integers(ok.size)]) + 1]] = 1
            cells = cells.reshape(rh.size, cw.size)
            return np.repeat(np.repeat(cells, rh, 0), cw, 1)
    return None


def grid_edges(n: int, cells: int) -> np.ndarray:
    """Borders of ``cells`` (nearly) equal cells over ``n`` pixels."""
    return np.round(np.linspace(0, n, cells + 1)).astype(np.int64)


def random_grid_mask(height: int,
                     width: int,
                     ratio: RatioSpec = 'high',
                     rng: Optional[np.random.Generator] = None,
                     cells: Sequence[int] = (4, 5, 7, 14)) -> np.ndarray:
    """A Hide-and-Seek hole mask on a grid of S x S cells.

    Args:
        height, width, ratio, rng: The mask's H and W, its hole-ratio bin
            and random source, as :func:`mmmsl.masks.random_irregular_mask`.
        cells (Sequence[int]): Grid sizes S (cells a side), one drawn per
            mask. Defaults to HaS's (4, 5, 7, 14).

    Returns:
        np.ndarray: ``(H, W)`` uint8 hole mask, 1 = removed pixel, constant
        on each cell of ``grid_edges(H, S) x grid_edges(W, S)``.

    Raises:
        ValueError: No grid size of ``cells`` reaches the bin at this size.
    """
    sizes = [cells] if isinstance(cells, int) else list(cells)
    if not sizes or any(
            not isinstance(s, (int, np.integer)) or isinstance(s, bool)
            or s < 1 for s in sizes):
        raise ValueError(f"mask family 'grid': cells={cells!r} must be a "
                         'non-empty list of integers >= 1')
    rng = np.random.default_rng() if rng is None else rng
    while sizes:
        s = sizes.pop(int(rng.integers(len(sizes))))
        hole = cell_mask(grid_edges(height, s), grid_edges(width, s), ratio,
                         rng)
        if hole is not None:
            return hole
    raise ValueError(f"mask family 'grid': no grid of cells={cells!r} has "
                     f'a {height}x{width} hole ratio in {parse_ratio(ratio)}')


__all__: Sequence[str] = ('cell_mask', 'grid_edges', 'random_grid_mask')
