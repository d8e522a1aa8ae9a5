"""A file object that runs out of disk space, for the full-disk tests (in the test process
and in the training child of tests/test_checkpoint.py)."""
import errno
import os


class FillsUp:
    """A file object from ``os.fdopen`` that writes ``room`` bytes, then fails as a full disk."""

    def __init__(self, file, room: int):
        self.file, self.room = file, room

    def write(self, data) -> int:
        if len(data) > self.room:
            self.file.write(bytes(data[:self.room]))
            self.file.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()
