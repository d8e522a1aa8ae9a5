"""Configs embedded in a checkpoint, read as data: never executed.

MMEngine executes the config text it stores in checkpoints: 0.10.7's ``Runner.resume`` runs
``meta['config']``, its inferencers ``meta['cfg']`` or ``message_hub['runtime_info']['cfg']``, so
``__import__('os').system(...)`` there runs on ``--resume``. :func:`defuse` (every checkpoint our
loaders read) parses each text with ``ast`` and writes back the same data as plain literals,
without ``_base_`` and ``custom_imports``; text that is not plain data is dropped with one warning.
"""
import ast
import logging
from typing import Any, Dict, List, MutableMapping, Tuple

from mmengine.logging import print_log

# Keys MMEngine's Config.fromfile acts on beyond holding data: it reads the files of `_base_`
# and imports the modules of `custom_imports` (every config of ours names mmpose_sam there, which
# is imported already when this runs). Dropped from the text written back.
_ACTING_KEYS = ('_base_', 'custom_imports')


def _data(node: ast.AST) -> Any:
    """The value of an expression made of literals and ``dict(key=value, ...)`` calls."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id == 'dict' and not node.args and all(k.arg for k in node.keywords):
        return {k.arg: _data(k.value) for k in node.keywords}
    if isinstance(node, ast.Dict) and None not in node.keys:  # None: a `**mapping`
        return {_data(k): _data(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_data(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    try:  # numbers (also negative), strings, bytes, True, False, None
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f'line {node.lineno}: {ast.unparse(node)[:60]!r} is not data') from None


def parse_config_text(text: str) -> Dict[str, Any]:
    """The data of an MMEngine Python config text, without running any of it.

    Args:
        text (str): e.g. ``Config.pretty_text``: assignments ``name = <literal or dict(...)>``.

    Returns:
        dict: Each assigned name and its value.

    Raises:
        ValueError: ``text`` is not Python, or holds something other than such assignments; the
            message names the line.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise ValueError(f'line {error.lineno}: not Python ({error.msg})') from None
    data = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            raise ValueError(f'line {node.lineno}: {ast.unparse(node)[:60]!r} is not an '
                             'assignment of data')
        data[node.targets[0].id] = _data(node.value)
    return data


def as_literal_text(data: Dict[str, Any]) -> str:
    """``data`` as config text of plain literals, one ``name = repr(value)`` a line, without
    the keys MMEngine would act on (``_base_``, ``custom_imports``).

    Raises:
        ValueError: a value whose ``repr`` is not a literal (``1e999`` is ``inf``, a name).
    """
    text = ''.join(f'{name} = {value!r}\n' for name, value in data.items()
                   if name not in _ACTING_KEYS)
    parse_config_text(text)  # what MMEngine executes must be plain data too
    return text


def _embedded(checkpoint: MutableMapping) -> List[Tuple[str, MutableMapping, str]]:
    """Where MMEngine reads config text from: (name for messages, container, key)."""
    places = []
    meta = checkpoint.get('meta')
    if isinstance(meta, MutableMapping):
        places += [(f'meta.{key}', meta, key) for key in ('config', 'cfg') if key in meta]
    info = checkpoint.get('message_hub')
    info = info.get('runtime_info') if isinstance(info, MutableMapping) else None
    if isinstance(info, MutableMapping) and 'cfg' in info:
        places.append(('message_hub.runtime_info.cfg', info, 'cfg'))
    return places


def defuse(checkpoint: Any, source: str) -> Any:
    """Replace each config text embedded in ``checkpoint`` by its data as plain literals, or
    remove it (one warning) when it is not plain data; in place.

    Args:
        checkpoint: What a checkpoint file held (other objects are returned as they are).
        source (str): The file or URL, for the warning.

    Returns:
        The same ``checkpoint``.
    """
    if not isinstance(checkpoint, MutableMapping):
        return checkpoint
    for where, container, key in _embedded(checkpoint):
        text = container[key]
        try:
            if not isinstance(text, str):
                raise ValueError(f'not text but of type {type(text).__name__}')
            container[key] = as_literal_text(parse_config_text(text))
        # TypeError: an unhashable dict key; RecursionError: nesting deeper than Python parses
        except (ValueError, TypeError, RecursionError) as error:
            del container[key]
            print_log(f'{source}: ignored its embedded config {where} ({error}); a config read '
                      'from a checkpoint is never executed', logger='current',
                      level=logging.WARNING)
    return checkpoint
