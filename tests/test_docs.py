"""README.md and docs/*.md: every relative link resolves (file and heading
anchor), every repository path they name exists, and the README stays a
front page (the details live in docs/)."""
import glob
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGES = ['README.md'] + sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'docs', '*.md')))
README_MAX_LINES = 220
#: Paths of other projects that the docs name as theirs ("mmpretrain's
#: tools/model_converters/..."): not files of this repository.
EXTERNAL_PATHS = {'tools/model_converters/torchvision_to_mmpretrain.py'}

_FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$', re.M | re.S)
_CODE_SPAN = re.compile(r'(`+)(?!`).+?(?<!`)\1(?!`)', re.S)
_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*)>?'
                   r'(?:\s+"[^"]*")?\s*\)')
_REF_DEF = re.compile(r'^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)', re.M)
_HTML = re.compile(r'\b(?:src|href)\s*=\s*"([^"]*)"')
_SCHEME = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*:')
_HEADING = re.compile(r'^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$', re.M)
#: A repository path in prose or code: ``configs/msl/x.py``, ``tools/...``.
_REPO_PATH = re.compile(
    r'(?<![\w./-])((?:configs|tools|docs|mmmsl|tests)/[\w./*{},-]*)')


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def _prose(text):
    """The text without fenced code blocks and code spans (no links
    there)."""
    text = _FENCE.sub('', text)
    return _CODE_SPAN.sub('code', text)


def links(text):
    """Every link target of a markdown text: inline links and images,
    reference definitions and HTML ``src``/``href``."""
    prose = _prose(text)
    return (_LINK.findall(prose) + _REF_DEF.findall(prose) +
            _HTML.findall(prose))


def anchors(text):
    """The heading ids GitHub gives a markdown text."""
    seen, ids = {}, set()
    for heading in _HEADING.findall(_FENCE.sub('', text)):
        slug = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading).lower()
        slug = re.sub(r'[^\w\- ]', '', slug).replace(' ', '-')
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        ids.add(slug if n == 0 else f'{slug}-{n}')
    return ids


def broken_links(page):
    """``(target, why)`` for each relative link of ``page`` (a file path)
    that does not resolve: a missing file or folder, or an anchor that no
    heading of the target page has."""
    broken = []
    for target in links(_read(page)):
        if not target or _SCHEME.match(target):
            continue  # web and mail links are not checked here
        path, _, anchor = target.partition('#')
        dest = osp.normpath(osp.join(osp.dirname(page), path)) if path \
            else page
        if not osp.exists(dest):
            broken.append((target, 'no such file'))
        elif anchor and dest.endswith('.md') and \
                anchor.lower() not in anchors(_read(dest)):
            broken.append((target, f'no heading #{anchor} in {path or page}'))
    return broken


def missing_paths(text, root=ROOT):
    """The repository paths (``configs/...``, ``tools/...``, ``docs/...``,
    ``mmmsl/...``, ``tests/...``; globs allowed) that ``text`` names and
    ``root`` lacks."""
    missing = []
    for path in _REPO_PATH.findall(text):
        path = path.rstrip('.,')
        if path in EXTERNAL_PATHS:
            continue
        pattern = osp.join(root, path)
        if not (glob.glob(pattern) if re.search(r'[*{]', path) else
                osp.exists(pattern)):
            missing.append(path)
    return sorted(set(missing))


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_resolve(page):
    assert broken_links(osp.join(ROOT, page)) == []


@pytest.mark.parametrize('page', PAGES)
def test_named_paths_exist(page):
    assert missing_paths(_read(osp.join(ROOT, page))) == []


def test_external_paths_are_named():
    """Every allow-listed external path is still named somewhere."""
    text = ''.join(_read(osp.join(ROOT, p)) for p in PAGES)
    assert {p for p in EXTERNAL_PATHS if p not in text} == set()


def test_readme_is_a_front_page():
    readme = _read(osp.join(ROOT, 'README.md'))
    assert len(readme.splitlines()) <= README_MAX_LINES
    # every docs page is reachable from the README
    linked = {osp.normpath(t.partition('#')[0]) for t in links(readme)}
    assert set(PAGES[1:]) - linked == set()


def test_readme_test_command():
    """CI runs the command of the README's "Test" section: keep it."""
    readme = _read(osp.join(ROOT, 'README.md'))
    section = re.search(r'^## Test\n(.*?)(?=^## )', readme, re.M | re.S)
    assert section, 'README has no "## Test" section'
    assert '```bash\npython -m pytest -q\n```' in section.group(1)


def test_checker_catches_broken_links_and_paths(tmp_path):
    """The checks above fail where they should."""
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs' / 'fig.png').write_bytes(b'')
    (tmp_path / 'tools').mkdir()
    (tmp_path / 'tools' / 'train.py').write_text('')
    page = tmp_path / 'docs' / 'page.md'
    page.write_text('\n'.join([
        '# Page title', '', '## `Some` heading >= 2', '',
        '![ok](fig.png) [ok](#page-title) [ok](page.md#some-heading--2)',
        '[ok](../tools/train.py) [web](https://example.com/x)',
        '[mail](mailto:a)',
        '![gone](docs/fig.png) [gone](missing.md) [gone](#no-such-heading)',
        '[gone](page.md#nope) <img src="nofig.png">', '',
        '[ref]: ../nowhere.md', '',
        '`[not a link](in-code.md)`', '```', '[not a link](in-fence.md)',
        '```',
    ]))
    assert sorted(t for t, _ in broken_links(str(page))) == sorted([
        'docs/fig.png', 'missing.md', '#no-such-heading', 'page.md#nope',
        'nofig.png', '../nowhere.md'
    ])
    text = ('python tools/train.py configs/msl/x.py; see tools/nothing.sh, '
            'tools/*.py, tools/*.sh and mmpretrain\'s '
            'tools/model_converters/torchvision_to_mmpretrain.py')
    assert missing_paths(text, root=str(tmp_path)) == [
        'configs/msl/x.py', 'tools/*.sh', 'tools/nothing.sh'
    ]
