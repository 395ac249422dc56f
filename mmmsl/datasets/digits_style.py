"""Styles of the digit canvases: the demo's gray ink on black, or coloured
digits over coloured, cluttered backgrounds (the second benchmark).

A style repaints a canvas that :func:`.digits_canvas.make_canvases` has
composed, so labels, boxes and visible shares are those of the gray canvas:
its value (0..255) becomes the digit's opacity, and each pixel takes the
colour of the digit that :func:`shown_owner` says shows there. Pure numpy /
cv2, seeded by the generator passed in.
"""
from typing import Sequence

import cv2
import numpy as np

from .digits_canvas import (INK_THRESHOLD, SPLIT_STREAMS, load_digit_sources,
                            render_digit)

#: ``'gray'``: the demo's white ink on black; ``'clutter'``: one colour per
#: digit over a smooth colour field crossed by thin lines.
STYLES = ('gray', 'clutter')
#: Bump whenever a style's output changes: its old caches then regenerate.
STYLE_VERSION = 2
#: The style's random stream, apart from the composition's, so a style
#: never changes which digits a canvas holds or where.
STYLE_STREAM = 3


def check_style(style: str) -> None:
    """Raise a ValueError naming ``style`` unless it is one of
    :data:`STYLES`."""
    if style not in STYLES:
        raise ValueError(f"DigitsMultiLabel: style must be one of {STYLES}, "
                         f"got '{style}'")


def shown_owner(images: np.ndarray, src_indices: Sequence[int],
                boxes: Sequence[Sequence[int]],
                canvas_size: int) -> np.ndarray:
    """Which digit shows at each pixel of one canvas, by replaying the paste
    rule of :func:`.digits_canvas.make_canvases`: a later digit takes the
    pixels of its ink and those where it is brighter than what lies below.

    Args:
        images, src_indices, boxes, canvas_size: One canvas, as in
            :func:`.digits_canvas.visible_fractions`.

    Returns:
        np.ndarray: int16 (canvas_size, canvas_size), the paste index of the
        digit shown at each pixel, -1 where no digit ever drew.
    """
    value = np.zeros((canvas_size, canvas_size), np.uint8)
    owner = np.full((canvas_size, canvas_size), -1, np.int16)
    for k, (src, (x1, y1, x2, y2)) in enumerate(zip(src_indices, boxes)):
        digit = render_digit(images[src], x2 - x1)
        takes = (digit >= INK_THRESHOLD) | (digit > value[y1:y2, x1:x2])
        owner[y1:y2, x1:x2][takes] = k
        value[y1:y2, x1:x2][takes] = digit[takes]
    return owner


def bright_colours(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` saturated, bright BGR colours of random hue, float32 (n, 3) in
    0..255."""
    hsv = np.stack([rng.uniform(0, 180, n), rng.uniform(140, 255, n),
                    rng.uniform(170, 255, n)], -1).astype(np.uint8)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2BGR)[0].astype(np.float32)


def clutter_background(size: int, rng: np.random.Generator,
                       num_lines: Sequence[int] = (2, 5)) -> np.ndarray:
    """A smooth random colour field (a 3x3 grid of dark colours, bicubic
    upscaled) crossed by long, thin, dimmer anti-aliased lines: clutter
    that carries no label. (No rings or short strokes: they read as 0s and
    1s.)

    Args:
        size (int): Side in pixels.
        rng (np.random.Generator): Random generator.
        num_lines (Sequence[int]): Inclusive range of the number of lines.
            Defaults to (2, 5).

    Returns:
        np.ndarray: uint8 (size, size, 3) BGR image.
    """
    grid = rng.uniform(0, 100, (3, 3, 3)).astype(np.float32)
    bg = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    bg = np.ascontiguousarray(np.clip(bg, 0, 255).astype(np.uint8))
    n = int(rng.integers(num_lines[0], num_lines[1] + 1))
    for colour in bright_colours(n, rng) * 0.6:
        # from one side of the canvas to another: longer than any digit
        t = rng.uniform(0, size - 1, 2)
        ends = [(0, t[0]), (size - 1, t[1])]
        if rng.random() < 0.5:
            ends = [(y, x) for x, y in ends]
        (x1, y1), (x2, y2) = ends
        cv2.line(bg, (int(x1), int(y1)), (int(x2), int(y2)),
                 tuple(map(float, colour)), 1, cv2.LINE_AA)
    return bg


def paint_clutter(gray: np.ndarray, owner: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Repaint one gray canvas in the ``'clutter'`` style.

    Args:
        gray (np.ndarray): uint8 (H, W) or (H, W, 3) gray canvas; its value
            is the opacity of the digit shown there.
        owner (np.ndarray): int (H, W) paste index of the digit shown at each
            pixel (:func:`shown_owner`), -1 for none.
        rng (np.random.Generator): Random generator (colours, background).

    Returns:
        np.ndarray: uint8 (H, W, 3) BGR canvas.
    """
    if gray.ndim == 3:
        gray = gray[..., 0]
    h, w = gray.shape
    assert h == w and owner.shape == gray.shape, (gray.shape, owner.shape)
    bg = clutter_background(h, rng).astype(np.float32)
    colours = bright_colours(max(int(owner.max()) + 1, 1), rng)
    ink = colours[np.maximum(owner, 0)]
    alpha = np.where(owner >= 0, gray / np.float32(255), 0)[..., None]
    return np.clip(bg * (1 - alpha) + ink * alpha + 0.5, 0,
                   255).astype(np.uint8)


def apply_style(style: str, split: str, seed: int, canvases: np.ndarray,
                src_idx: Sequence[Sequence[int]],
                boxes: Sequence[Sequence[Sequence[int]]]) -> np.ndarray:
    """Paint the canvases of :func:`.digits_canvas.compose_split` in a style.

    Args:
        style (str): One of :data:`STYLES`; ``'gray'`` returns ``canvases``.
        split (str), seed (int): As given to ``compose_split``; the style's
            stream is ``SeedSequence([seed, SPLIT_STREAMS[split],
            STYLE_STREAM])``.
        canvases (np.ndarray): uint8 (N, S, S, 3) gray canvases.
        src_idx, boxes: Per canvas, the digits (indices into
            ``load_digit_sources()``) and their boxes, in paste order.

    Returns:
        np.ndarray: uint8 (N, S, S, 3) BGR canvases.
    """
    check_style(style)
    if style == 'gray':
        return canvases
    images, _ = load_digit_sources()
    rng = np.random.default_rng(
        np.random.SeedSequence([int(seed), SPLIT_STREAMS[split],
                                STYLE_STREAM]))
    size = canvases.shape[1]
    return np.stack([
        paint_clutter(c, shown_owner(images, s, b, size), rng)
        for c, s, b in zip(canvases, src_idx, boxes)])
