"""Atomic checkpoints: files that survive a kill at any moment.

mmengine writes a checkpoint with ``open(path, 'wb')`` (a kill mid-write
leaves a truncated ``epoch_N.pth``), writes ``last_checkpoint`` the same way,
and with ``max_keep_ckpts`` removes the oldest checkpoint *before* saving the
new one (with ``max_keep_ckpts=1`` a kill in between leaves
``last_checkpoint`` naming a deleted file). :class:`AtomicCheckpointHook`
writes every file to a temporary name in the same folder and renames it over
the target (``os.replace``, atomic on POSIX and Windows), updates
``last_checkpoint`` only once the checkpoint is complete, and removes
outdated checkpoints last. At any moment ``last_checkpoint`` names a whole
checkpoint, so ``--resume`` always works.
"""
import glob
import os
import os.path as osp
import tempfile
from contextlib import suppress
from typing import Union

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmpretrain.registry import HOOKS

#: Suffix of the temporary files :func:`atomic_write` renames into place;
#: leftovers of a killed write are removed by the next training run.
PARTIAL_SUFFIX = '.mmmsl-partial'

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(data: Union[bytes, str], path: str) -> None:
    """Write ``data`` to ``path`` so that ``path`` is never partly written.

    The bytes go to a hidden temporary file next to ``path``, are flushed
    and fsynced, and the file is renamed over ``path``. A reader (or a
    resumed run) sees the old file or the new one, never a truncated one.

    Args:
        data (bytes | str): Content (str is written as UTF-8).
        path (str): Target file; its folder is created if needed.
    """
    if isinstance(data, str):
        data = data.encode('utf-8')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(path)}.', suffix=PARTIAL_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.remove(tmp)
        raise
    with suppress(OSError):  # make the rename itself durable (POSIX)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@register_backend('atomic_local', force=True)
class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose ``put``/``put_text`` are atomic
    (:func:`atomic_write`). Selected with ``backend_args=dict(backend=
    'atomic_local')``; :class:`AtomicCheckpointHook` does so by default."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), str(filepath))


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose files are always complete.

    Same arguments and behaviour as :class:`mmengine.hooks.CheckpointHook`,
    except that, for a local ``out_dir`` and no explicit ``backend_args`` /
    ``file_client_args``:

    - checkpoints and ``last_checkpoint`` are written atomically
      (:func:`atomic_write`);
    - ``last_checkpoint`` is updated only after the checkpoint is complete,
      and checkpoints beyond ``max_keep_ckpts`` are removed only after that;
    - leftover temporary files of a killed run are removed before training.

    Enable it in a config with
    ``default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))``
    (other keys of the base config's checkpoint hook are kept).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        local = self.out_dir is None or '://' not in str(self.out_dir)
        self.atomic = (local and self.backend_args is None
                       and self.file_client_args is None)
        if self.atomic:
            self.backend_args = dict(backend='atomic_local')

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.atomic and is_main_process():
            for folder in {self.out_dir, runner.work_dir}:
                for tmp in glob.glob(osp.join(folder, '.*' + PARTIAL_SUFFIX)):
                    with suppress(OSError):
                        os.remove(tmp)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self.atomic:
            return super()._save_checkpoint_with_step(runner, step, meta)
        # As CheckpointHook, but the outdated checkpoint is removed after
        # the new one and last_checkpoint are in place, not before.
        outdated = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(self.last_ckpt, osp.join(runner.work_dir,
                                              'last_checkpoint'))
        if outdated is not None and outdated != step:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(outdated))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed checkpoints
                self.file_backend.rmtree(path)
