from .bilinear_heatmap_head import BilinearHeatmapHead

__all__ = ['BilinearHeatmapHead']
