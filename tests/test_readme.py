"""README's links and the section names that configs, code and docs refer to resolve."""
import re

import pytest

from conftest import ROOT

README = (ROOT / 'README.md').read_text(encoding='utf-8')
HEADINGS = [line.lstrip('#').strip() for line in README.splitlines() if line.startswith('## ')]


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r'[^\w\- ]', '', heading.lower()).replace(' ', '-')


def test_relative_links_point_at_files():
    targets = re.findall(r'\]\(([^)#:]+)(?:#[^)]*)?\)', README)
    assert targets, 'no relative links found: the pattern is wrong'
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert missing == []


def test_anchors_point_at_headings():
    anchors = re.findall(r'\]\(#([^)]+)\)', README)
    assert len(anchors) >= 10
    assert sorted(set(anchors) - {github_anchor(h) for h in HEADINGS}) == []


@pytest.mark.parametrize('folder', ['configs', 'mmpose_sam', 'tools', 'docs', 'projects'])
def test_section_names_cited_elsewhere_exist(folder):
    cited = {}
    for path in (ROOT / folder).rglob('*'):
        if path.suffix in ('.py', '.md', '.sh') and path.is_file():
            for name in re.findall(r'README(?:\.md)?,? "([^"]+)"', path.read_text(encoding='utf-8')):
                cited.setdefault(name, path.relative_to(ROOT))
    assert {name: where for name, where in cited.items()
            if not any(h.lower() == name.lower() for h in HEADINGS)} == {}


def test_no_placeholders_left():
    assert '{{' not in README


def test_paths_it_names_exist():
    """Every file or folder README names in backticks (``mmpose_sam/speed/amp.py``) is in the tree,
    so that the architecture it describes is the one on disk."""
    named = set(re.findall(r'`((?:mmpose_sam|tools|configs|docs|tests)/[\w./-]*)`', README))
    named = {path.replace('configs/.../', 'configs/body_2d_keypoint/topdown_heatmap/')
             for path in named}
    missing = sorted(path for path in named if not (ROOT / path.rstrip('/')).exists())
    assert not missing, missing


def test_architecture_lists_every_package():
    section = README.split('## Architecture', 1)[1].split('\n## ', 1)[0]
    packages = sorted(p.name for p in (ROOT / 'mmpose_sam').iterdir()
                      if (p / '__init__.py').is_file())
    assert [name for name in packages if f'  {name}/' not in section] == []
