"""Libraries that only this repository's ``tools/`` use (and the tests of those tools): model
analysis and timing, the environment check, MMPose's own tools, several runners in one process,
MMPose's model zoo numbers. Not part of the ``mmpose_sam`` package: ``tools/`` scripts find it
next to themselves (``sys.path[0]``)."""
import argparse


def doc_parser(doc: str) -> argparse.ArgumentParser:
    """A tool's parser: the first line of its docstring ``doc`` as the description, the rest
    (usage, what it does) as the epilog, as written."""
    lines = doc.splitlines()
    return argparse.ArgumentParser(description=lines[0], epilog='\n'.join(lines[1:]),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
