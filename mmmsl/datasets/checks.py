"""Early errors that name the file at fault, shared by mmmsl's datasets."""
import os.path as osp
from typing import Optional, Sequence

import mmcv
from mmengine.fileio import LocalBackend, get, get_file_backend


#: Where the expected folder layouts are described, named in the errors.
DATA_LAYOUT_DOC = 'docs/configs_and_data.md, section "Data layouts"'


class CorruptImageError(OSError):
    """An image file exists but cannot be decoded (truncated, empty, not an
    image)."""


def check_image_files(img_paths: Sequence[str], source: str,
                      shown: int = 3) -> None:
    """Raise if images of a dataset are missing, naming the first ones.

    One ``os.path.isfile`` per unique path (about a second for COCO's
    82,783 train images on a local disk); paths on other storage backends
    are not checked (they would cost a request each).

    Args:
        img_paths (Sequence[str]): The samples' ``img_path`` values.
        source (str): The file that lists them (split file or annotation
            json), named in the message.
        shown (int): How many missing paths the message names.

    Raises:
        FileNotFoundError: Some images do not exist; the message gives
        their count and the first ``shown`` paths.
    """
    if not img_paths or not isinstance(
            get_file_backend(img_paths[0]), LocalBackend):
        return
    unique = list(dict.fromkeys(img_paths))
    missing = [p for p in unique if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of the {len(unique)} images listed in {source} '
            f'do not exist, e.g. {", ".join(missing[:shown])}')


def check_data_paths(dataset) -> None:
    """Raise if a dataset's data root, annotation file or folder is absent.

    Checked in this order, each only if set and on a local disk: the
    ``data_root`` folder, the ``ann_file``, VOC's split file
    (``image_set_path``) and the folders of ``data_prefix`` (images,
    annotations).

    Args:
        dataset: A :class:`mmengine.dataset.BaseDataset` whose prefixes are
            joined (after its ``__init__`` has set them).

    Raises:
        FileNotFoundError: Naming the dataset class, what is missing, the
        path, and :data:`DATA_LAYOUT_DOC`.
    """
    prefixes = getattr(dataset, 'data_prefix', None) or {}
    checks = [('data root', getattr(dataset, 'data_root', None), osp.isdir),
              ('annotation file', getattr(dataset, 'ann_file', None),
               osp.isfile),
              ('split file', getattr(dataset, 'image_set_path', None),
               osp.isfile)]
    checks += [('image folder' if key == 'img_path' else 'annotation folder'
                if key == 'ann_path' else f'{key} folder', path, osp.isdir)
               for key, path in prefixes.items()]
    for what, path, exists in checks:
        if not path or not isinstance(path, str) or not isinstance(
                get_file_backend(path), LocalBackend):
            continue
        if not exists(path):
            raise FileNotFoundError(
                f'{type(dataset).__name__}: the {what} {path} does not '
                f'exist (the expected layout: {DATA_LAYOUT_DOC})')


def image_file_error(img_path: str) -> Optional[OSError]:
    """The error that makes ``img_path`` unloadable, or None if it loads.

    Returns:
        OSError | None: :class:`FileNotFoundError` if the file is absent,
        :class:`CorruptImageError` if mmcv cannot decode it (cv2 returns
        None for garbage bytes and raises for an empty file), else None.
    """
    try:
        content = get(img_path)
    except FileNotFoundError:
        return FileNotFoundError(f'Image file not found: {img_path}')
    try:
        img = mmcv.imfrombytes(content)
    except Exception:  # cv2.error on an empty buffer
        img = None
    if img is None:
        return CorruptImageError(
            f'Cannot decode image file {img_path} ({len(content)} bytes): '
            'the file is corrupt or not an image')
    return None


class ImageErrorMixin:
    """Name the missing path at build, and the image when a sample's
    pipeline fails because of it.

    For :class:`mmengine.dataset.BaseDataset` subclasses whose samples have
    an ``img_path``. Before the data list is loaded,
    :func:`check_data_paths` names a missing data root, annotation file or
    folder. If the pipeline raises, the image is read and decoded
    once more: if that fails too, :class:`CorruptImageError` (or
    :class:`FileNotFoundError`) naming the path is raised from the original
    error; otherwise the original error propagates unchanged. Nothing is
    done for samples that load (no cost).
    """

    def full_init(self):
        """Check the data paths (:func:`check_data_paths`), then load."""
        if not getattr(self, '_fully_initialized', False):
            check_data_paths(self)
        super().full_init()

    def prepare_data(self, idx):
        """The ``idx``-th sample after the pipeline, see the class doc."""
        try:
            return super().prepare_data(idx)
        except Exception as e:
            img_path = self.get_data_info(idx).get('img_path')
            error = None if img_path is None else image_file_error(img_path)
            if error is None:
                raise
            raise error from e
