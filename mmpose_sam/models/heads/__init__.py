from mmpose_sam.models.heads.bilinear_heatmap_head import BilinearHeatmapHead

__all__ = ['BilinearHeatmapHead']
