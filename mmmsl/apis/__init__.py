from .inference import (MultiLabelInferencer, decode_scores, expand_inputs,
                        inference_multilabel, init_model)
from .robustness import add_test_masks
from .thresholds import (load_thresholds, resolve_thresholds, save_thresholds,
                         tune_class_thresholds)

__all__ = ['MultiLabelInferencer', 'init_model', 'inference_multilabel',
           'decode_scores', 'expand_inputs', 'add_test_masks',
           'load_thresholds', 'resolve_thresholds', 'save_thresholds',
           'tune_class_thresholds']
