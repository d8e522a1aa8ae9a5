"""What a data check finds: a :class:`Problem` per finding, one line each, and their summary.
Errors are data MMPose would crash on or misuse; warnings, data it drops or tolerates.
"""
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, List, Tuple

ERROR = 'error'
WARNING = 'warning'


@dataclass(frozen=True)
class Problem:
    """One finding of a data check.

    Args:
        file (str): The annotation, detection or image file, as the config names it.
        where (str): Where in ``file``: ``'annotation 42'``, ``'image 785'``, ``'detection 3'``,
            ``'category 1'``; empty for the file as a whole.
        kind (str): Short name of the kind of problem, for summaries (``'keypoint count'``).
        message (str): What is wrong, one line.
        severity (str): :data:`ERROR` or :data:`WARNING`.
    """
    file: str
    where: str
    kind: str
    message: str
    severity: str = ERROR

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def __str__(self) -> str:
        return ': '.join(part for part in (self.file, self.where, self.message) if part)


def count_by_kind(problems: Iterable[Problem]) -> str:
    """``'keypoint count: 2, missing image: 1'``: how many problems of each kind, most first."""
    counts = Counter(problem.kind for problem in problems)
    return ', '.join(f'{kind}: {count}' for kind, count in counts.most_common())


def plural(count: int, noun: str) -> str:
    """``plural(1, 'error') == '1 error'``, ``plural(2, 'error') == '2 errors'``."""
    return f'{count} {noun}' if count == 1 else f'{count} {noun}s'


def split_by_severity(problems: Iterable[Problem]) -> Tuple[List[Problem], List[Problem]]:
    """``(errors, warnings)`` among ``problems``, each in the given order."""
    problems = list(problems)
    return ([problem for problem in problems if problem.is_error],
            [problem for problem in problems if not problem.is_error])
