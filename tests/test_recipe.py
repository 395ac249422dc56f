"""docs/recipe.md's "same" rows hold in every paper config they name."""
import ast
import glob
import importlib
import math
import os.path as osp
import re

import pytest
from mmengine.config import Config

import mmmsl  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CARD = osp.join(REPO, 'docs', 'recipe.md')
PAPER = [osp.relpath(c, REPO) for c in sorted(
    glob.glob(osp.join(REPO, 'configs', '*', '*.py'))) if 'digits' not in c]
# `[tags] dotted.key = python literal`
CHECK = re.compile(r'`(?:\[([^\]]+)\] )?([A-Za-z_][\w.\-]*) = ([^`]+)`')


def card_rows():
    """(point, authors' column, verdict, checks) of every table row; the
    checks are ``(tags, key, literal)`` and test files named in the row."""
    rows = []
    for line in open(CARD):
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 4 or cells[0] in ('point', '---'):
            continue
        point, authors, ours, verdict = cells
        tests = [t for t in re.findall(r'tests/test_\w+\.py', ours)
                 if osp.isfile(osp.join(REPO, t))]
        rows.append((point, authors, verdict, CHECK.findall(ours) + tests))
    return rows


def selected(tags: str, path: str) -> bool:
    """``a+b,c``: (a and b) or c, each a substring of the config path."""
    return not tags or any(
        all(t in path for t in alt.split('+')) for alt in tags.split(','))


def resolve(root, key: str):
    value = root
    for part in key.split('.'):
        if isinstance(value, (list, tuple)):
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value[part]
        else:
            value = getattr(value, part)
    return value


def same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(
            b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    return a == b and type(a) is type(b)


def test_card_covers_every_same_number_with_a_check():
    rows = card_rows()
    assert len(rows) >= 30
    unchecked = [p for p, authors, verdict, checks in rows
                 if verdict.startswith('same') and re.search(r'\d', authors)
                 and not checks]
    assert not unchecked, unchecked
    assert all(v.startswith(('same', 'differs, because'))
               for _, _, v, _ in rows)


@pytest.mark.parametrize('path', PAPER)
def test_paper_config_matches_the_card(path):
    cfg = Config.fromfile(osp.join(REPO, path))
    checked, wrong = 0, []
    for point, _, verdict, checks in card_rows():
        for tags, key, literal in (c for c in checks if isinstance(c, tuple)):
            if key.startswith('mmmsl.'):
                continue  # not a config value, see below
            if not selected(tags, path):
                continue
            expected = ast.literal_eval(literal)
            try:
                actual = resolve(cfg, key)
            except (KeyError, IndexError, AttributeError):
                actual = '<missing>'
            checked += 1
            if not same(actual, expected):
                wrong.append(f'{point}: {key} = {actual!r}, card says '
                             f'{expected!r}')
    assert checked >= 15 and not wrong, wrong


def test_card_checks_of_package_constants():
    found = 0
    for point, _, _, checks in card_rows():
        for _, key, literal in (c for c in checks if isinstance(c, tuple)):
            if not key.startswith('mmmsl.'):
                continue
            module, _, name = key.rpartition('.')
            while module not in ('', 'mmmsl') and not _importable(module):
                module, _, rest = module.rpartition('.')
                name = f'{rest}.{name}'
            value = resolve(importlib.import_module(module), name)
            assert same(value, ast.literal_eval(literal)), (point, key)
            found += 1
    assert found >= 1


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False
