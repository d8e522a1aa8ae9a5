from .bilinear_heatmap_head import BilinearHeatmapHead
from .device_accuracy import enable_device_accuracy, heatmap_pck_accuracy

__all__ = ['BilinearHeatmapHead', 'enable_device_accuracy', 'heatmap_pck_accuracy']
