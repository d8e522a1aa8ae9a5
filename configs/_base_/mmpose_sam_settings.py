# Our speed and safety settings, for the root configs that add them to an MMPose config (our
# SimpleBaseline-R50 and HRNet-W32 roots; every other config inherits one of those). Nothing here
# changes the model, the data, the augmentation or the schedule: they set how fast and how safely a
# run goes (README "Training speed", "When things go wrong").
#
# MMEngine refuses a key defined by two bases of one config, so the settings that merge into
# MMPose's own keys are under `speed_and_safety`, and each root assigns them:
#     _base_ = ['mmpose::<MMPose config>', '../../../_base_/mmpose_sam_settings.py']
#     optim_wrapper = _base_.speed_and_safety.optim_wrapper  # and so on for every key below
custom_imports = dict(imports=['mmpose_sam'], allow_failed_imports=False)

fast_loader = dict(
    num_workers=8,  # per GPU; MMPose's 2 cannot feed one modern GPU
    persistent_workers=True,
    pin_memory=True)
# --- safety: bad data stops at dataset build or is skipped and counted, in one line -------------
# (README "When things go wrong", docs/data_checks.md; max_skipped_ratio=0.01 by default).
checked_dataset = dict(type='CheckedCocoDataset')

speed_and_safety = dict(
    # --- speed (README "Training speed"; mmpose_sam/amp.py, mmpose_sam/engine, models/heads) -----
    # bf16 autocast, no loss scaling (bf16 has float32's exponent range). Off: type='OptimWrapper'.
    optim_wrapper=dict(type='AmpOptimWrapper', dtype='bfloat16'),
    # Fixed input sizes: cuDNN may time its kernels once and keep the fastest.
    env_cfg=dict(cudnn_benchmark=True),
    model=dict(
        # One copy per batch to the GPU (pinned memory, asynchronous) instead of one per crop.
        data_preprocessor=dict(type='StackedPoseDataPreprocessor', non_blocking=True),
        # MMPose's acc_pose, computed on the GPU instead of in numpy on the host.
        train_cfg=dict(compute_acc='device')),
    # 3 tensors per batch cross from the workers, not 192. Training only: MMEngine 0.10.7's
    # inferencer reads test_dataloader.collate_fn as a registry name and fails on a dict.
    train_dataloader=dict(
        **fast_loader, collate_fn=dict(type='stack_collate'), dataset=checked_dataset),
    val_dataloader=dict(**fast_loader, dataset=checked_dataset),
    # MMPose's schedule of both roots (210 epochs, validation every 10) in our loop: a data loader
    # worker killed by the out-of-memory killer saves iter_<N>.pth and ends in one line instead
    # of a traceback (mmpose_sam/engine/loops.py). MMEngine refuses `by_epoch` (MMPose's) next to
    # `type`.
    train_cfg=dict(
        _delete_=True, type='WorkerSafeEpochBasedTrainLoop', max_epochs=210, val_interval=10),
    # Loss and accuracy are read back from the GPU once per log interval, not every iteration.
    default_hooks=dict(runtime_info=dict(type='LazyRuntimeInfoHook')),
    custom_hooks=[
        # A GPU torch cannot use (old driver) stops the run in one line instead of training on
        # the CPU; deterministic=True warns on CUDA ops without deterministic kernels; resumed
        # optimizer step counters stay on the CPU (no per-step read-back).
        dict(type='DeviceSetupHook'),
        dict(type='SyncBuffersHook'),  # MMPose's default
        # NHWC weights and batches: no transposes around tensor cores
        dict(type='ChannelsLastHook'),
        # --- safety (README "When things go wrong"; mmpose_sam/engine) ------------------------
        # A non-finite loss or gradient norm, or a loss 100x its early value, stops the run in
        # one line, before a checkpoint of diverged weights is written.
        dict(type='DivergenceHook'),
        # SIGTERM/SIGINT (preemption, Ctrl-C): save iter_<N>.pth at the end of the iteration,
        # exit; --resume continues exactly there.
        dict(type='PreemptionHook'),
    ])
