"""``import mmpose_sam`` only adds names to registries: nothing of torch, MMEngine, MMCV, MMDet or
MMPose is replaced, and a user's plain MMPose model behaves exactly as without the plugin.

Each check runs in fresh child processes (tests/helpers_plugin_identity.py): this test process has
imported ``mmpose_sam.upstream`` long ago, through our configs.
"""
import json

from conftest import ROOT, run_python

HELPER = ROOT / 'tests' / 'helpers_plugin_identity.py'


def child(*args) -> dict:
    proc = run_python([HELPER, *map(str, args)])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_replaces_nothing_upstream():
    result = child('snapshot')
    assert result['modules'] > 1000  # torch, MMEngine, MMCV, MMDet and MMPose were looked at
    assert result['changed'] == []
    # What it adds: our names, in MMPose's and MMEngine's registries, and one checkpoint prefix.
    assert "mmengine.runner.checkpoint.CheckpointLoader._schemes['partial:']" in result['added']
    assert 'mmpose::model::CheckedTopdownPoseEstimator' in result['added']
    assert 'mmpose::model::SAMResNet' in result['added']
    assert 'mmpose::hook::AtomicCheckpointHook' in result['added']
    assert 'mmengine::optim_wrapper::BF16AmpOptimWrapper' in result['added']
    assert 'mmengine::model_wrapper::AnyDeviceDistributedDataParallel' in result['added']
    assert not [name for name in result['added'] if name.startswith('mmengine::hook::')]


def test_our_configs_opt_in_to_exactly_the_listed_upstream_fixes():
    """``mmpose_sam.upstream`` (our configs' ``custom_imports``) replaces what README's "Upstream
    fixes" table lists, on the versions the table names, and nothing else."""
    from mmpose_sam.upstream import FIXES
    listed = sorted(name for fix in FIXES if fix.applies for name in fix.replaces)
    changed = child('snapshot', 'mmpose_sam.upstream')['changed']
    assert sorted(line.split(' -> ')[0] for line in changed) == sorted(listed + ['sys.excepthook'])
    readme = (ROOT / 'README.md').read_text(encoding='utf-8')
    for fix in FIXES:
        assert f'`{fix.module.__name__}`' in readme
        for name in fix.replaces:
            assert f'`{name}`' in readme, name


def test_a_newer_mmengine_keeps_its_own_behaviour_and_is_told_which_fix_to_check():
    """Each fix is gated on the MMEngine version it was checked against: with a newer one,
    ``mmpose_sam.upstream`` patches nothing and warns once per fix, naming it."""
    proc = run_python([HELPER, 'snapshot', 'mmpose_sam.upstream'], AS_IF_MMENGINE='0.10.8')
    assert json.loads(proc.stdout.strip().splitlines()[-1])['changed'] == [
        'sys.excepthook -> replaced']
    for module in ('checkpoint_loading', 'distributed'):
        assert (f'mmpose_sam.upstream: mmpose_sam.upstream.{module} was checked up to mmengine '
                '0.10.7, this is 0.10.8: not applied; check whether that release still needs it '
                '(README "Upstream fixes")') in proc.stderr, proc.stderr


def test_a_plain_mmpose_model_behaves_as_without_the_plugin(tmp_path):
    """Fine-tuning: a 17-keypoint checkpoint into a 14-keypoint model (MMPose's usual transfer),
    which MMEngine loads as far as it fits with a warning; then training: a plain MMPose config
    trains 2 iterations, saves, resumes for a third. Both the same, to the bit, with the plugin
    imported (one child each way)."""
    env = dict(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')  # MMEngine 0.10.7's resume on torch >= 2.6
    plain = run_python([HELPER, 'life', tmp_path / 'plain'], **env)
    ours = run_python([HELPER, 'life', tmp_path / 'ours', '--plugin'], **env)
    plain, ours = (json.loads(p.stdout.strip().splitlines()[-1]) for p in (plain, ours))
    assert ours == plain
    finetuned, trained = plain['finetune'], plain['train']
    assert finetuned['outcome'] == 'loaded'
    assert 'size mismatch for head.final_layer.weight' in '\n'.join(finetuned['warnings'])
    assert len(trained['losses'][0]) == 2 and len(trained['losses'][1]) == 3
    assert trained['losses'][1][:2] == trained['losses'][0]  # resumed history
    assert trained['files'] == ['iter_2.pth', 'iter_3.pth', 'last_checkpoint']
