"""tailtune's per-step training loop (``train.fast_step``, default on).

The Trainer's ``_run_epoch`` is replaced by :func:`run_epoch` (the same sequence, so the same
losses bit for bit: tests/training/test_speed_levers.py) without the host work a classifier
fine-tune does not need at every step:

- no host reads of device values inside the step: the loss, each loss part and the pre-clip
  gradient norm accumulate on the device and are read once per epoch (``TailtuneTrainer._reduce``);
  the Trainer's NaN/inf check of each step's loss (two reads) is not made;
- ``model.train()`` once per epoch and again only when something (an evaluation) left the model
  in eval mode (the Trainer walks every submodule every step); inputs moved only when they are
  not on the device already;
- gradient clipping on a cached parameter list with ``torch.nn.utils.clip_grad_norm_`` (the
  accelerator's version rebuilds the list from ``model.parameters()`` each step), and no norm at
  all when clipping is off (the Trainer computes an unclipped norm for its logs every step);
- gradients released with a loop over that list (``set_to_none``, as ``model.zero_grad()``);
- the optimiser stepped through accelerate's wrapper directly (it probes the disk for an optional
  package twice per step), and Adam/AdamW's per-step walk over every parameter to collect its
  state (``_init_group``) replaced by the lists of the previous step while the parameters with
  gradients and the state are the same ones (:class:`CachedInitGroup`); a fused Adam/AdamW (the
  default optimiser) is stepped by its fused kernel directly, with the step counters of a group
  held as one tensor (:class:`FusedAdamStep`: the same kernel on the same tensors, so the same
  update bit for bit, without ``Optimizer.step``'s per-call Python and one counter increment per
  parameter);
- callbacks whose step hooks are the base class's no-ops are not called per step; the Trainer's
  per-step FLOP and token counters are skipped (tailtune's module has no FLOP estimate: they
  were zero).

Orchestration stays with the Trainer: epochs, resume (RNG states, the sampler's epoch), the
evaluation / checkpoint / logging decisions (its ``DefaultFlowCallback`` and
``_maybe_log_save_evaluate``), DDP (``no_sync`` on all but the last micro-batch of an
accumulation), ``report_to``. A resumed epoch that starts mid-way (never produced by tailtune's
epoch-end checkpoints) runs the Trainer's own loop for that epoch.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time

import torch
from torch.optim import optimizer as _optim_module

logger = logging.getLogger(__name__)

__all__ = ["CachedInitGroup", "FusedAdamStep", "StepEngine", "run_epoch", "supported"]

#: the parameters of ``Trainer._run_epoch`` this loop replaces (transformers 5.x)
_RUN_EPOCH_PARAMS = ("model", "epoch", "train_dataloader", "steps_in_epoch", "num_update_steps_per_epoch", "trial",
                     "ignore_keys_for_eval", "start_time", "resume_from_checkpoint", "epochs_trained",
                     "steps_trained_in_current_epoch")
_SIMPLE_CLIP = ("NO", "MULTI_GPU", "MULTI_CPU", "MULTI_XPU", "MULTI_NPU", "MULTI_MLU", "MULTI_MUSA")


def supported(trainer_cls) -> bool:
    """Whether this transformers version has the ``_run_epoch`` this loop replaces (5.x); older
    ones keep the Trainer's loop (same results, more host work)."""
    fn = getattr(trainer_cls, "_run_epoch", None)
    if fn is None:
        return False
    params = list(inspect.signature(fn).parameters)[1:]
    return tuple(params) == _RUN_EPOCH_PARAMS


def _overrides(callbacks, event: str) -> bool:
    from transformers import TrainerCallback

    base = getattr(TrainerCallback, event)
    return any(getattr(type(cb), event, base) is not base for cb in callbacks)


class StepEngine:
    """One micro-batch forward/backward and one optimiser step, without host synchronisation."""

    def __init__(self, trainer, model):
        self.tr = trainer
        self.params = list(model.parameters())
        self.grad_params = [p for p in self.params if p.requires_grad]
        acc = trainer.accelerator
        dist = getattr(acc.distributed_type, "name", str(acc.distributed_type))
        mixed = getattr(trainer, "_has_mixed_mesh_grads", None)
        self.simple_clip = dist in _SIMPLE_CLIP and not (mixed is not None and mixed(model))
        handler = trainer.callback_handler
        self.hooks = {e: _overrides(handler.callbacks, e)
                      for e in ("on_step_begin", "on_pre_optimizer_step", "on_optimizer_step", "on_substep_end")}
        self.device = trainer.args.device
        self.n_gpu = trainer.args.n_gpu  # a property that re-derives the device on every read
        self._plateau = (None, False)  # (scheduler, whether it steps on a metric): checked once per scheduler
        self.has_optimizer_train = callable(getattr(trainer.optimizer, "train", None))
        from accelerate.optimizer import AcceleratedOptimizer

        # a plain PyTorch optimiser inside accelerate's wrapper, single process or DDP (not XLA, LOMO, ...)
        self.plain_optimizer = (type(trainer.optimizer) is AcceleratedOptimizer and dist in _SIMPLE_CLIP
                                and isinstance(getattr(trainer.optimizer, "optimizer", None), torch.optim.Optimizer)
                                and type(trainer.optimizer.optimizer).__module__.startswith("torch.optim"))
        self.fused_step = None
        if self.plain_optimizer:
            CachedInitGroup.install(trainer.optimizer.optimizer)
            self.fused_step = FusedAdamStep.create(trainer.optimizer.optimizer)
        compiled = getattr(getattr(trainer, "compiled_forward", None), "stats", None)
        self.compile_stats = compiled

    def _to_device(self, inputs: dict) -> dict:
        device = self.device
        if all(not isinstance(v, torch.Tensor) or v.device == device for v in inputs.values()):
            return inputs
        return self.tr._prepare_inputs(inputs)

    def forward_backward(self, model, inputs: dict, num_items_in_batch) -> torch.Tensor:
        """Forward, loss and backward of one micro-batch (the Trainer's ``training_step`` less its
        per-step ``model.train()`` walk: :func:`run_epoch` sets train mode at the start of the
        epoch, and again here only if something, e.g. an evaluation, left the model in eval
        mode); returns the detached loss, on the device."""
        tr = self.tr
        if not model.training:
            model.train()
        if self.has_optimizer_train:
            tr.optimizer.train()
        start = time.perf_counter() if self.compile_stats is not None else 0.0
        inputs = self._to_device(inputs)
        with tr.compute_loss_context_manager():
            loss = tr.compute_loss(model, inputs, num_items_in_batch=num_items_in_batch)
        if self.n_gpu > 1:
            loss = loss.mean()
        if (not tr.model_accepts_loss_kwargs or num_items_in_batch is None) and tr.compute_loss_func is None:
            loss = loss / tr.current_gradient_accumulation_steps
        tr.accelerator.backward(loss)
        if self.compile_stats is not None and self.compile_stats.pending_forward_s is not None:
            self.compile_stats.add_step(time.perf_counter() - start)
        return loss.detach()

    def clip(self, model):
        """Clip the gradients to ``max_grad_norm``; the pre-clip norm as a device tensor."""
        tr = self.tr
        if not self.simple_clip:
            return tr._clip_grad_norm(model)  # TailtuneTrainer's: records the norm too
        tr.accelerator.unscale_gradients()
        norm = clip_grad_norm(self.grad_params, tr.args.max_grad_norm)
        tr.accumulate_grad_norm(norm)
        return norm

    def _step_optimizer(self) -> None:
        """``optimizer.step()``; an ``AcceleratedOptimizer`` without a gradient scaler (bf16, fp32)
        is stepped through to the PyTorch optimiser it wraps: its own ``step`` looks for an
        optional package on disk twice per call (``is_lomo_available``) and then does just that."""
        opt = self.tr.optimizer
        inner = getattr(opt, "optimizer", None)
        if (self.plain_optimizer and inner is not None and getattr(opt, "scaler", None) is None
                and opt.gradient_state.sync_gradients):
            if self.fused_step is None or not self.fused_step.step():
                inner.step()
            opt._opt_called = True  # what the schedule's wrapper of opt.step records (else it warns)
        else:
            opt.step()

    def steps_on_metric(self, scheduler) -> bool:
        """Whether ``scheduler`` steps on a metric (not per optimiser step), remembered per scheduler."""
        if self._plateau[0] is not scheduler:
            self._plateau = (scheduler, _plateau(scheduler))
        return self._plateau[1]

    def optimizer_step(self, model):
        """Clip, step the optimiser and the schedule, release the gradients.

        Returns ``(grad_norm or None, learning rate used by this step)``."""
        tr = self.tr
        args, state, handler = tr.args, tr.state, tr.callback_handler
        grad_norm = self.clip(model) if args.max_grad_norm and args.max_grad_norm > 0 else None
        if self.hooks["on_pre_optimizer_step"]:
            tr.control = handler.on_pre_optimizer_step(args, state, tr.control)
        self._step_optimizer()
        if self.hooks["on_optimizer_step"]:
            tr.control = handler.on_optimizer_step(args, state, tr.control)
        learning_rate = tr._get_learning_rate()
        if not tr.accelerator.optimizer_step_was_skipped and not self.steps_on_metric(tr.lr_scheduler):
            tr.lr_scheduler.step()
        for p in self.params:
            p.grad = None
        return grad_norm, learning_rate


class CachedInitGroup:
    """Adam/AdamW's ``_init_group`` (the per-step walk that lists each parameter with a gradient
    and its state) answered from the previous step's lists while nothing changed: the same
    parameters have gradients (by identity), the optimiser's state is the same object (not
    reloaded) and no parameter was added. The lists hold the same tensors the walk would
    collect (state tensors are updated in place; gradients are re-read every step), so the
    optimiser's update is unchanged; anything new goes through the original walk."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.original = optimizer._init_group
        self.cache: dict[int, tuple] = {}

    @classmethod
    def install(cls, optimizer) -> None:
        if type(optimizer) in (torch.optim.Adam, torch.optim.AdamW) and "_init_group" not in optimizer.__dict__:
            optimizer._init_group = cls(optimizer)

    def __call__(self, group, params_with_grad, grads, *lists):
        ids = [id(p) for p in group["params"] if p.grad is not None]
        entry = self.cache.get(id(group))
        if entry is not None and entry[0] == ids and entry[1] is self.optimizer.state and not group["amsgrad"]:
            params = entry[2]
            params_with_grad.extend(params)
            grads.extend([p.grad for p in params])
            for dst, src in zip(lists, entry[3]):
                dst.extend(src)
            return entry[4]
        has_complex = self.original(group, params_with_grad, grads, *lists)
        if not any(g.is_sparse for g in grads):
            self.cache[id(group)] = (ids, self.optimizer.state, list(params_with_grad), [list(x) for x in lists],
                                     has_complex)
        return has_complex


class FusedAdamStep:
    """A fused Adam/AdamW (``fused=True``, torch's default in the Trainer: ``adamw_torch_fused``)
    stepped by its kernel (``torch._fused_adam_`` / ``torch._fused_adamw_``) directly.

    ``Optimizer.step`` spends most of a small model's step in Python around one kernel: the hooks
    and profiler wrappers, grouping the tensors by device and dtype, and ``_foreach_add_`` over the
    step counters (one increment per parameter on the host). Here the lists of each group are
    built once (:class:`CachedInitGroup`'s conditions: the same parameters have gradients, the
    state is the same object), the group's step counters become views of one tensor (each
    parameter keeps its own ``state["step"]`` tensor, with its own value: one ``add_`` increments
    them all, as ``_foreach_add_`` would), and the kernel gets what ``torch.optim.adam._fused_adam``
    would give it: the same update bit for bit (tests/training/test_fast_step.py).

    :meth:`step` returns ``False`` (the caller then runs ``optimizer.step()``, which also sets
    the state up at the first step) whenever this does not hold: a parameter without state or
    with another device or dtype than its group's, hooks on the optimiser, a tensor learning rate,
    ``differentiable``, a group that is not fused."""

    _KEYS = ("exp_avg", "exp_avg_sq", "step")

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.plans: dict[int, tuple] = {}  # id(group) -> (ids of params with grads, state, its size, plan or None)

    @classmethod
    def create(cls, optimizer) -> FusedAdamStep | None:
        """The fast step of ``optimizer``, or ``None`` when it is not a fused Adam/AdamW."""
        kernels = (getattr(torch, "_fused_adam_", None), getattr(torch, "_fused_adamw_", None))
        if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW) or None in kernels:
            return None
        if not all(g.get("fused") and not g.get("differentiable") for g in optimizer.param_groups):
            return None
        return cls(optimizer)

    def _hooked(self) -> bool:
        opt = self.optimizer
        return bool(opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks
                    or _optim_module._global_optimizer_pre_hooks or _optim_module._global_optimizer_post_hooks)

    def _kernel(self, group: dict):
        """What ``Adam.step`` calls for this group: AdamW's update when weight decay is decoupled."""
        decoupled = group.get("decoupled_weight_decay", isinstance(self.optimizer, torch.optim.AdamW))
        return torch._fused_adamw_ if decoupled else torch._fused_adam_

    def _plan(self, group: dict, params: list):
        """The lists the kernel takes for ``params`` (all with gradients), or ``None``."""
        state = self.optimizer.state
        if not params:
            return None
        first = params[0]
        for p in params:
            s = state.get(p)
            if (not s or any(k not in s for k in self._KEYS) or p.device != first.device or p.dtype != first.dtype
                    or p.grad.dtype != p.dtype or p.grad.is_sparse or p.is_complex()):
                return None
        amsgrad = bool(group["amsgrad"])
        if amsgrad and any("max_exp_avg_sq" not in state[p] for p in params):
            return None
        steps = [state[p]["step"] for p in params]
        if any(t.dim() != 0 or t.dtype != steps[0].dtype or t.device != steps[0].device for t in steps):
            return None
        counter = torch.stack([t.detach() for t in steps])  # one tensor, each parameter's own value
        for i, p in enumerate(params):
            state[p]["step"] = counter[i]
        walk = self.optimizer.__dict__.get("_init_group")
        if isinstance(walk, CachedInitGroup):  # its lists hold the counters just replaced
            walk.cache.clear()
        return {"kernel": self._kernel(group), "params": params, "exp_avgs": [state[p]["exp_avg"] for p in params],
                "exp_avg_sqs": [state[p]["exp_avg_sq"] for p in params],
                "max_exp_avg_sqs": [state[p]["max_exp_avg_sq"] for p in params] if amsgrad else [],
                "steps": [state[p]["step"] for p in params], "counter": counter, "amsgrad": amsgrad}

    def step(self) -> bool:
        """One optimiser step through the kernels; ``False`` when it must be ``optimizer.step()``."""
        opt = self.optimizer
        if self._hooked():
            return False
        runs = []
        for group in opt.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            ids = [id(p) for p in params]
            entry = self.plans.get(id(group))
            if entry is None or entry[0] != ids or entry[1] is not opt.state or entry[2] != len(opt.state):
                entry = (ids, opt.state, len(opt.state), self._plan(group, params))
                self.plans[id(group)] = entry
            plan = entry[3]
            if params and plan is None:
                return False
            if isinstance(group["lr"], torch.Tensor) or not group.get("fused") or group.get("differentiable"):
                return False
            if plan is not None:
                runs.append((group, plan))
        with torch.no_grad():
            for group, plan in runs:
                beta1, beta2 = group["betas"]
                plan["counter"].add_(1)
                plan["kernel"](plan["params"], [p.grad for p in plan["params"]], plan["exp_avgs"], plan["exp_avg_sqs"],
                            plan["max_exp_avg_sqs"], plan["steps"], amsgrad=plan["amsgrad"], lr=group["lr"],
                            beta1=float(beta1), beta2=float(beta2), weight_decay=group["weight_decay"],
                            eps=group["eps"], maximize=group["maximize"], grad_scale=None, found_inf=None)
        return True


@torch.no_grad()
def clip_grad_norm(params: list, max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_(params, max_norm)`` (2-norm) without its per-call grouping
    of the gradients by device and dtype when they share one: the same operations in the same
    order, so the same result bit for bit; several groups go to PyTorch's function."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    first = grads[0]
    if any(g.device != first.device or g.dtype != first.dtype or g.is_sparse for g in grads):
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    norms = torch._foreach_norm(grads, 2.0)
    total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
    coef = torch.clamp(float(max_norm) / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)
    return total


def _plateau(scheduler) -> bool:
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    if isinstance(scheduler, ReduceLROnPlateau):
        return True
    try:
        from transformers.optimization import GreedyLR
    except ImportError:
        return False
    return isinstance(scheduler, GreedyLR)


def _set_epoch(train_dataloader, epoch: int) -> None:
    if hasattr(train_dataloader, "set_epoch"):
        train_dataloader.set_epoch(epoch)
    shard = getattr(train_dataloader, "batch_sampler", None)
    inner = getattr(shard, "batch_sampler", None)
    if hasattr(inner, "set_epoch"):
        inner.set_epoch(epoch)


def run_epoch(tr, model, epoch, train_dataloader, steps_in_epoch, num_update_steps_per_epoch, trial,
              ignore_keys_for_eval, start_time, resume_from_checkpoint, epochs_trained,
              steps_trained_in_current_epoch):
    """One pass over the training data: the Trainer's ``_run_epoch`` contract (module docstring)."""
    args = tr.args
    resuming = epoch == epochs_trained and resume_from_checkpoint is not None
    if resuming and steps_trained_in_current_epoch == 0:
        tr._load_rng_state(resume_from_checkpoint)
    engine = tr._step_engine(model)
    model.train()  # every submodule: a freshly loaded encoder comes in eval mode (dropout off)
    tr.mark_epoch_start()
    _set_epoch(train_dataloader, epoch)
    iterator = iter(train_dataloader)
    ga = args.gradient_accumulation_steps
    remainder = steps_in_epoch % ga or ga
    multi = tr.accelerator.num_processes > 1
    step, grad_norm, learning_rate = -1, None, None
    for update_step in range(num_update_steps_per_epoch):
        batches, num_items = tr.get_batch_samples(iterator, ga if update_step != num_update_steps_per_epoch - 1
                                                  else remainder, args.device)
        tr.current_gradient_accumulation_steps = len(batches)
        for i, inputs in enumerate(batches):
            step += 1
            sync = (step + 1) % ga == 0 or (step + 1) == steps_in_epoch
            tr.accelerator.gradient_state._set_sync_gradients(sync)
            if step % ga == 0 and engine.hooks["on_step_begin"]:
                tr.control = tr.callback_handler.on_step_begin(args, tr.state, tr.control)
            context = tr.accelerator.no_sync(model) if multi and i < len(batches) - 1 else contextlib.nullcontext()
            with context:
                loss = engine.forward_backward(model, inputs, num_items)
            tr._tr_loss += loss
            if sync:
                grad_norm, learning_rate = engine.optimizer_step(model)
                tr.state.global_step += 1
                tr.state.epoch = epoch + (step + 1) / steps_in_epoch
                tr.control = tr.callback_handler.on_step_end(args, tr.state, tr.control)
                control = tr.control
                if control.should_log or control.should_evaluate or control.should_save:
                    tr._maybe_log_save_evaluate(tr._tr_loss, grad_norm, model, trial, epoch, ignore_keys_for_eval,
                                                start_time, learning_rate=learning_rate)
            elif engine.hooks["on_substep_end"]:
                tr.control = tr.callback_handler.on_substep_end(args, tr.state, tr.control)
            if tr.control.should_epoch_stop or tr.control.should_training_stop:
                break
        if tr.control.should_epoch_stop or tr.control.should_training_stop:
            break
    if step < 0:
        logger.warning("the training data gave no batch this epoch; stopping at step %d", tr.state.global_step)
        tr.control.should_training_stop = True
    tr.control = tr.callback_handler.on_epoch_end(args, tr.state, tr.control)
    tr._maybe_log_save_evaluate(tr._tr_loss, grad_norm, model, trial, epoch, ignore_keys_for_eval, start_time,
                                learning_rate=learning_rate)
