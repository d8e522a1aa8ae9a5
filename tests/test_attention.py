import pytest
import torch

from mmpose_sam.models import ChannelAttention, SpatialAttention, StageAttention


@pytest.mark.parametrize('kernel,pooling,params', [
    ('3x3+3x3', 'avg', 10 + 10),
    ('3x3//3x3', 'avg', 10 + 10),
    ('7x7', 'avg', 49 + 1),
    ('3x3+3x3', 'avg+max', 19 + 10),
    ('7x7', 'avg+max', 98 + 1),
])
def test_spatial_attention_params_and_shape(kernel, pooling, params):
    module = SpatialAttention(kernel, pooling)
    assert sum(p.numel() for p in module.parameters()) == params
    x = torch.randn(2, 8, 6, 5)
    assert module(x).shape == x.shape


def test_channel_attention_is_the_papers_bottleneck():
    module = ChannelAttention(256, ratio=16)
    # 1x1 conv 256->16 and 16->256, both with bias (no norm layer).
    assert sum(p.numel() for p in module.parameters()) == 256 * 16 + 16 + 16 * 256 + 256
    x = torch.randn(2, 256, 4, 3)
    gate = module(x) / x
    # The gate is one sigmoid weight per (sample, channel), shared over H x W, inside (0, 1).
    assert torch.allclose(gate, gate[..., :1, :1].expand_as(gate), atol=1e-5)
    assert ((gate > 0) & (gate < 1)).all()


def test_spatial_attention_gate_is_shared_across_channels():
    module = SpatialAttention('3x3+3x3')
    x = torch.rand(1, 4, 5, 5) + 0.1
    gate = module(x) / x
    assert torch.allclose(gate, gate[:, :1].expand_as(gate), atol=1e-6)


def test_spatial_attention_avg_pooling_sees_only_channel_mean():
    """The paper pools by channel average only: inputs with equal means give equal gates."""
    module = SpatialAttention('7x7', 'avg')
    a = torch.rand(1, 4, 6, 6)
    b = a.mean(1, keepdim=True).expand_as(a).clone()
    assert torch.allclose(module.gate(module.convs(module.pool(a))),
                          module.gate(module.convs(module.pool(b))))


def test_parallel_variant_sums_two_branches():
    module = SpatialAttention('3x3//3x3')
    pooled = torch.randn(1, 1, 5, 5)
    first, second = module.convs
    assert torch.allclose(module.convs(pooled), first(pooled) + second(pooled))


def test_stage_attention_residual_and_ablation():
    x = torch.randn(2, 32, 4, 4)
    with_residual = StageAttention(32, ratio=4)
    attended = with_residual.spatial(with_residual.channel(x))
    assert torch.allclose(with_residual(x), x + attended)
    without = StageAttention(32, ratio=4, residual=False)
    assert torch.allclose(without(x), without.spatial(without.channel(x)))


def test_identity_init_is_exact_identity_and_learns():
    module = StageAttention(32, ratio=4, identity_init=True)
    x = torch.randn(2, 32, 4, 4)
    assert torch.equal(module(x), x)
    module(x).square().sum().backward()
    assert module.scale.grad is not None and module.scale.grad.abs().item() > 0


@pytest.mark.parametrize('kwargs,message', [
    (dict(spatial_kernel='5x5'), "kernel must be one of '3x3+3x3', '3x3//3x3', '7x7', got '5x5'"),
    (dict(spatial_pooling='max'), "pooling must be one of 'avg', 'avg+max', got 'max'"),
    (dict(ratio=0), 'ratio must be a positive integer dividing channels=32, got 0'),
    (dict(ratio=5), 'ratio must be a positive integer dividing channels=32, got 5'),
    (dict(residual=False, identity_init=True), 'identity_init=True needs residual=True'),
])
def test_bad_arguments_name_the_allowed_values(kwargs, message):
    with pytest.raises(ValueError) as error:
        StageAttention(32, **kwargs)
    assert message in str(error.value)
