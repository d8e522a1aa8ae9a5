# Our speed and safety settings, for the root configs that add them to an MMPose config (our
# SimpleBaseline-R50 and HRNet-W32 roots; every other config inherits one of those). Nothing here
# changes the model's computation, the data, the augmentation or the schedule: they set how fast and
# how safely a run goes (README "Training speed", "When things go wrong"). Every setting is a name
# that mmpose_sam registers; nothing of MMPose or MMEngine is replaced.
#
# MMEngine refuses a key defined by two bases of one config, so the settings that merge into
# MMPose's own keys are under `speed_and_safety`, and each root assigns them:
#     _base_ = ['mmpose::<MMPose config>', '../../../_base_/mmpose_sam_settings.py']
#     optim_wrapper = _base_.speed_and_safety.optim_wrapper  # and so on for every key below
#
# `mmpose_sam` registers our names; `mmpose_sam.upstream` applies the few fixes for MMEngine 0.10.x
# that no registered name can reach, each only on the versions it fixes (README "Upstream fixes").
custom_imports = dict(imports=['mmpose_sam', 'mmpose_sam.upstream'], allow_failed_imports=False)

fast_loader = dict(
    num_workers=8,  # per GPU; MMPose's 2 cannot feed one modern GPU
    persistent_workers=True,
    pin_memory=True)
# --- safety: bad data stops at dataset build or is skipped and counted, in one line -------------
# (README "When things go wrong", docs/data_checks.md; max_skipped_ratio=0.01 by default).
checked_dataset = dict(type='CheckedCocoDataset')

speed_and_safety = dict(
    # --- speed (README "Training speed"; mmpose_sam/speed) --------------------------------------
    # bf16 autocast, no loss scaling (bf16 has float32's exponent range); float32 with a warning on
    # a CPU without native bf16. Off: type='OptimWrapper'.
    optim_wrapper=dict(type='BF16AmpOptimWrapper', dtype='bfloat16'),
    # Fixed input sizes: cuDNN may time its kernels once and keep the fastest.
    env_cfg=dict(cudnn_benchmark=True),
    model=dict(
        # MMPose's TopdownPoseEstimator that refuses, in one line, a checkpoint file that does
        # not fit it (MMEngine loads what matches and logs the rest: AP 0.000 at the end).
        type='CheckedTopdownPoseEstimator',
        # MMPose's HeatmapHead that computes acc_pose on the device (below) and decodes bf16
        # heatmaps; SAM's BilinearHeatmapHead does both too.
        head=dict(type='DeviceAccuracyHeatmapHead'),
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
    # of a traceback (mmpose_sam/reliability/hooks/loops.py). MMEngine refuses `by_epoch`
    # (MMPose's) next to `type`.
    train_cfg=dict(
        _delete_=True, type='WorkerSafeEpochBasedTrainLoop', max_epochs=210, val_interval=10),
    # DDP on GPUs and on CPUs (MMEngine's passes device_ids, which torch refuses on a CPU).
    # MMEngine's default for a model without model_wrapper_cfg: broadcast_buffers=False.
    model_wrapper_cfg=dict(type='AnyDeviceDistributedDataParallel', broadcast_buffers=False),
    default_hooks=dict(
        # Loss and accuracy are read back from the GPU once per log interval, not every
        # iteration.
        runtime_info=dict(type='LazyRuntimeInfoHook'),
        # Saved to a temporary file renamed into place (never half a checkpoint); old ones
        # removed only after the new one is written; a full disk in one line.
        checkpoint=dict(type='AtomicCheckpointHook')),
    custom_hooks=[
        # A GPU torch cannot use (old driver) stops the run in one line instead of training on
        # the CPU; deterministic=True warns on CUDA ops without deterministic kernels; resumed
        # optimizer step counters stay on the CPU (no per-step read-back).
        dict(type='DeviceSetupHook'),
        dict(type='SyncBuffersHook'),  # MMPose's default
        # NHWC weights and batches: no transposes around tensor cores
        dict(type='ChannelsLastHook'),
        # --- safety (README "When things go wrong"; mmpose_sam/reliability) -------------------
        # A non-finite loss or gradient norm, or a loss 100x its early value, stops the run in
        # one line, before a checkpoint of diverged weights is written.
        dict(type='DivergenceHook'),
        # SIGTERM/SIGINT (preemption, Ctrl-C): save iter_<N>.pth at the end of the iteration,
        # exit; --resume continues exactly there.
        dict(type='PreemptionHook'),
    ])
