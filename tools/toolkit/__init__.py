"""Libraries that only this repository's ``tools/`` use (and the tests of those tools): model
analysis and timing, the environment check, MMPose's own tools, several runners in one process,
MMPose's model zoo numbers. Not part of the ``mmpose_sam`` package: ``tools/`` scripts find it
next to themselves (``sys.path[0]``)."""
