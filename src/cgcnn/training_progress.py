"""The epoch lines and bar of ``cgcnn train``: the epoch, the training loss (on standardised
targets), the validation metric in its unit, the best so far and the time left.

On a terminal, one tqdm bar over all the batches of the run, the epoch's numbers beside it.
Anywhere else (a log file, CI, a notebook cell), one plain line per epoch, or every
:data:`~cgcnn.progress.LINE_EVERY` seconds, whichever is rarer; the first and the last
epochs always have their line, and a long epoch reports its batches every
:data:`LONG_SILENCE` seconds.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any

import lightning as L

from cgcnn.progress import LINE_EVERY, duration, line_prefix, on_terminal

#: within a long epoch, a line about its batches after this many silent seconds
LONG_SILENCE = 60.0


class TrainingProgress(L.Callback):
    """Epoch, loss, validation metric with its unit, best so far, time left (see the module).

    Args:
        monitor: the validation metric watched (``val_mae`` or ``val_loss``).
        unit: the metric's unit (``""``: none or unknown).
        desc: what is trained (``train``, ``member2``).
        stream: where it goes (stderr by default).
    """

    def __init__(
        self, monitor: str, unit: str = "", desc: str = "train", stream: IO[str] | None = None
    ) -> None:
        self.monitor, self.unit, self.desc, self.stream = monitor, unit, desc, stream
        self.best: tuple[float, int] | None = None
        self.bar: Any = None
        self.last_line = 0.0
        self.started = 0.0
        self.first_epoch = 0

    # ------------------------------------------------------------------ hooks

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = self.last_line = time.perf_counter()
        self.first_epoch = trainer.current_epoch
        if on_terminal(self.stream):
            from tqdm import tqdm

            batches = max(int(trainer.num_training_batches), 1)
            self.bar = tqdm(
                total=trainer.max_epochs * batches,
                initial=trainer.current_epoch * batches,
                desc=self.desc,
                unit="batch",
                file=self.stream or sys.stderr,
                leave=True,
            )

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.perf_counter()
        if now - self.last_line >= LONG_SILENCE:
            batch = args[-1] + 1 if args else 0
            self._print(
                f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: batch "
                f"{batch}/{trainer.num_training_batches}, {duration(now - self.started)}"
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        epoch = trainer.current_epoch + 1
        value = metrics.get(self.monitor)
        improved = value is not None and math.isfinite(float(value))
        if improved and (self.best is None or float(value) < self.best[0]):
            self.best = (float(value), epoch)
        if self.bar is not None:  # tqdm shows the time itself
            self.bar.set_postfix_str(self.summary(epoch, trainer.max_epochs, metrics, False))
            return
        text = self.summary(epoch, trainer.max_epochs, metrics)
        now = time.perf_counter()
        last = epoch >= trainer.max_epochs or trainer.should_stop
        if last or epoch == self.first_epoch + 1 or now - self.last_line >= LINE_EVERY:
            self._print(text)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # ------------------------------------------------------------------ text

    def summary(
        self, epoch: int, max_epochs: int, metrics: dict[str, Any], timing: bool = True
    ) -> str:
        """``epoch 12/100: loss 0.213 (standardised), val MAE 0.0342 eV/atom, best 0.0311
        (epoch 9), 38 s, at most ~4.1 min left``."""
        parts = [f"epoch {epoch}/{max_epochs}"]
        loss = metrics.get("train_loss")
        if loss is not None:
            parts.append(f"loss {float(loss):.4g} (standardised)")
        value = metrics.get(self.monitor)
        name = {"val_mae": "val MAE", "val_loss": "val loss"}.get(self.monitor, self.monitor)
        unit = f" {self.unit}" if self.unit and self.monitor == "val_mae" else ""
        if value is not None:
            parts.append(f"{name} {float(value):.4g}{unit}")
        accuracy = metrics.get("val_accuracy")
        if accuracy is not None:
            parts.append(f"val accuracy {float(accuracy):.3f}")
        if self.best is not None:
            parts.append(f"best {self.best[0]:.4g}{unit} (epoch {self.best[1]})")
        spent = time.perf_counter() - self.started
        done = epoch - self.first_epoch
        if timing and done > 0:
            left = spent / done * (max_epochs - epoch)
            parts.append(
                duration(spent) + (f", at most ~{duration(left)} left" if left > 0 else "")
            )
        return ", ".join(parts)

    def _print(self, text: str) -> None:
        print(
            f"{line_prefix()}{self.desc}: {text}",
            file=self.stream or sys.stderr,
            flush=True,
        )
        self.last_line = time.perf_counter()
