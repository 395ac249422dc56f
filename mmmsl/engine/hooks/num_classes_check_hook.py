"""Check the model's class count against the datasets' before running."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Check the model's class count against the datasets' before running.

    A head built for another number of classes than the dataset has fails
    only inside the first iteration, with a shape error (or, worse, trains on
    one-hot labels cut or padded to the wrong length). This hook compares
    ``model.head.num_classes`` (or the config's ``model.head.num_classes``
    for heads that do not store it, such as ``CSRAClsHead``) and the data
    preprocessor's ``num_classes`` with ``len(dataset.metainfo['classes'])``
    of the train and val datasets before training (and of the val/test
    dataset before a standalone ``val``/``test``), and raises a
    ``ValueError`` naming both numbers and the dataset.

    Datasets without ``metainfo['classes']`` and models without a head are
    skipped.

    mmdet's ``NumClassCheckHook`` does the same for detection heads (it
    walks every module with a ``num_classes`` and asserts, before each
    train / val epoch); this one also checks the preprocessor's one-hot
    size, runs once before the loop, and raises a ``ValueError`` that names
    the key to change.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _model_counts(runner) -> dict:
        model = _unwrap(runner.model)
        counts = {}
        head = getattr(model, 'head', None)
        n = getattr(head, 'num_classes', None)
        if n is None and head is not None:
            n = ((runner.cfg.get('model') or {}).get('head') or {}).get(
                'num_classes')
        if isinstance(n, int):
            counts['model.head.num_classes'] = n
        pre = getattr(model, 'data_preprocessor', None)
        n = getattr(pre, 'num_classes', None)
        if isinstance(n, int):
            counts['model.data_preprocessor.num_classes'] = n
        return counts

    def _check(self, runner, loop, name: str) -> None:
        dataloader = getattr(loop, 'dataloader', None)
        dataset = getattr(dataloader, 'dataset', None)
        metainfo = getattr(dataset, 'metainfo', None) or {}
        classes = metainfo.get('classes')
        if classes is None:
            return
        for key, n in self._model_counts(runner).items():
            if n != len(classes):
                root = getattr(dataset, 'data_root', None)
                where = f', data_root={root!r}' if root else ''
                shown = ', '.join(map(str, list(classes)[:5]))
                more = ', ...' if len(classes) > 5 else ''
                raise ValueError(
                    f'NumClassesCheckHook: {key}={n}, but the {name} '
                    f'dataset ({type(dataset).__name__}{where}) has '
                    f'{len(classes)} classes ({shown}{more}). Set {key}='
                    f'{len(classes)} (and every other num_classes of the '
                    'model) or use a dataset with that many classes.')

    def before_train(self, runner) -> None:
        self._check(runner, runner.train_loop, 'train')
        if runner.val_loop is not None:  # built by Runner.train already
            self._check(runner, runner.val_loop, 'val')

    def before_val(self, runner) -> None:
        self._check(runner, runner.val_loop, 'val')

    def before_test(self, runner) -> None:
        self._check(runner, runner.test_loop, 'test')
