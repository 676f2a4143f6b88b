"""Forward+backward time of every tailtune loss against the plain PyTorch loss, in one process.

References (measured in the same run, interleaved round by round):
* softmax losses vs ``F.cross_entropy`` (N=4096, C=90 by default);
* sigmoid / multi-label losses vs ``F.binary_cross_entropy_with_logits`` (same N, C);
* supervised contrastive loss vs pytorch-metric-learning ``SupConLoss`` (batch 256..1024, dim 384),
  with the relative difference of the two values recorded as a correctness check.

The fused losses (softmax/sigmoid focal, asymmetric, supcon: :mod:`tailtune.losses._fused`) run in
the default kernel mode ``auto`` (compiled with ``torch.compile`` on CUDA, eager kernels with a
closed-form gradient elsewhere); the key ones are also timed in mode ``reference`` (plain autograd,
what the losses did before) against the same reference, so one run shows both. The first call of a
case (on CUDA: the compilation) is timed separately as ``first_call_ms`` and never enters a ratio.

Each figure is the best (minimum) over ``--rounds`` rounds of the mean time of ``--iters``
forward+backward passes, reference and candidate alternating round by round; the ratio is
candidate best / reference best (interference from other processes only adds time, so the minimum
is the steadier estimate on a shared machine). Medians and their ratio are recorded too. On CPU the
default is one intra-op thread: on a loaded shared machine two OpenMP threads contend and single
kernels vary tenfold. Targets (GPU): focal <= 1.3x cross-entropy at N=4096, C=90; supcon <= 0.5x
pytorch-metric-learning at batch 1024, dim 384.

Cases run in priority order (the two targets first) and the JSON is rewritten after each case, so a
run stopped by ``--budget-s`` (default 40 s on CUDA) or by a caller's time cap keeps what it finished;
skipped cases are listed.

Usage::

    python benchmarks/losses.py --device cpu            # writes benchmarks/results/losses-cpu.json
    python benchmarks/losses.py --device cuda           # on an H100/H200, about a minute
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from tailtune import losses as L

try:
    from tailtune.losses import _fused
except ImportError:  # a checkout from before the fused kernels: the same command measures it
    _fused = None

ROOT = Path(__file__).resolve().parent
CE, BCE, PML = "F.cross_entropy", "F.binary_cross_entropy_with_logits", "pytorch_metric_learning.losses.SupConLoss"


@dataclass
class Case:
    group: str
    name: str
    reference_name: str
    candidate: object
    reference: object
    mode: str = "auto"
    shape: list = field(default_factory=list)
    check: dict = field(default_factory=dict)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


#: CUDA: wall time. CPU (one intra-op thread): the process's CPU time, which other jobs on a shared
#: machine do not inflate (wall-clock ratios there varied 2x run to run at load 10 on 2 cores)
_CLOCK = {"clock": time.perf_counter}


def _time(fn, *, iters: int, device: str) -> float:
    clock = _CLOCK["clock"]
    _sync(device)
    t0 = clock()
    for _ in range(iters):
        fn()
    _sync(device)
    return (clock() - t0) / iters


def compare(candidate, reference, *, iters: int, rounds: int, warmup: int, device: str) -> dict:
    first = _time(candidate, iters=1, device=device)  # compilation on CUDA: never in the ratio
    for _ in range(warmup):
        candidate()
        reference()
    cand, ref = [], []
    for _ in range(rounds):
        ref.append(_time(reference, iters=iters, device=device))
        cand.append(_time(candidate, iters=iters, device=device))
    c, r = min(cand), min(ref)
    cm, rm = statistics.median(cand), statistics.median(ref)
    return {"time_ms": c * 1e3, "reference_ms": r * 1e3, "ratio": c / r, "median_time_ms": cm * 1e3,
            "median_reference_ms": rm * 1e3, "median_ratio": cm / rm, "first_call_ms": first * 1e3}


def fwd_bwd(loss_fn, *tensors):
    """A closure running loss_fn(*leaves) forward and backward on fresh gradient leaves."""
    leaves = [t.detach().clone().requires_grad_(True) if t.is_floating_point() else t for t in tensors]

    def run():
        for t in leaves:
            if t.is_floating_point():
                t.grad = None
        loss_fn(*leaves).backward()

    return run


def agreement(loss_fn, z) -> dict:
    """The fused path (mode ``auto``) against the reference (plain autograd through the same
    operations) on this device: relative value difference and largest gradient difference."""
    if _fused is None:
        return {}
    out = {}
    for mode in ("auto", "reference"):
        previous = _fused.set_kernel_mode(mode)
        try:
            t = z.detach().clone().requires_grad_(True)
            value = loss_fn(t)
            value.backward()
            out[mode] = (value.detach().double(), t.grad.double())
        finally:
            _fused.set_kernel_mode(previous)
    (v, g), (rv, rg) = out["auto"], out["reference"]
    return {"fused_vs_reference_value_rel_diff": float((v - rv).abs() / rv.abs().clamp_min(1e-30)),
            "fused_vs_reference_grad_max_abs_diff": float((g - rg).abs().max()),
            "grad_max_abs": float(rg.abs().max())}


def _module_case(group, name, ref_name, module, z, y, ref, mode="auto", check=False):
    fn = lambda a: module(a, y)  # noqa: E731
    return Case(group, name, ref_name, fwd_bwd(fn, z), ref, mode, list(z.shape), agreement(fn, z) if check else {})


def softmax_cases(n: int, c: int, device: str, dtype) -> tuple[list[Case], list[Case]]:
    """The key cases (focal, auto and reference mode) and the rest."""
    g = torch.Generator(device="cpu").manual_seed(0)
    z = (torch.randn(n, c, generator=g) * 2).to(device, dtype)
    y = torch.randint(0, c, (n,), generator=g).to(device)
    counts = torch.randint(5, 5000, (c,), generator=g).tolist()
    alpha = L.CrossEntropyLoss.from_counts(counts).weight.to(device)
    ref = fwd_bwd(lambda a: F.cross_entropy(a, y), z)
    mods = {
        "softmax_focal(gamma=2,alpha,smoothing=0.1)": L.SoftmaxFocalLoss(gamma=2.0, alpha=alpha, label_smoothing=0.1),
        "softmax_focal(gamma=-1 reversed)": L.SoftmaxFocalLoss(gamma=-1.0),
        "cross_entropy(weight)": L.CrossEntropyLoss(weight=alpha),
        "logit_adjusted": L.LogitAdjustedLoss(counts=counts),
        "ldam": L.LDAMLoss(counts=counts),
        "dice(multiclass)": L.SoftDiceLoss(kind="multiclass"),
        "tversky(multiclass)": L.TverskyLoss(kind="multiclass", alpha=0.3, beta=0.7),
        "sentiment_focal(multiclass)": L.SentimentFocalLoss(kind="multiclass", length=False),
        "weighted(multiclass)": L.WeightedLoss(kind="multiclass", length=False),
    }
    focal = L.SoftmaxFocalLoss(gamma=2.0).to(device)
    key = [_module_case("softmax", "softmax_focal(gamma=2)", CE, focal, z, y, ref, check=True),
           _module_case("softmax", "softmax_focal(gamma=2) [reference]", CE, focal, z, y, ref, "reference")]
    return key, [_module_case("softmax", k, CE, m.to(device), z, y, ref) for k, m in mods.items()]


def sigmoid_cases(n: int, c: int, device: str, dtype) -> tuple[list[Case], list[Case]]:
    """The key cases (sigmoid focal, ASL; auto and reference mode) and the rest."""
    g = torch.Generator(device="cpu").manual_seed(1)
    z = (torch.randn(n, c, generator=g) * 2).to(device, dtype)
    y = (torch.rand(n, c, generator=g) < 0.05).float().to(device)
    counts = (y.sum(0).clamp_min(1)).long().tolist()
    parents = [-1] * c
    for j in range(1, c, 3):
        parents[j] = j - 1
    ref = fwd_bwd(lambda a: F.binary_cross_entropy_with_logits(a, y), z)
    focal, asl = L.SigmoidFocalLoss(gamma=2.0, alpha=0.25).to(device), L.AsymmetricLoss().to(device)
    key = [_module_case("sigmoid", "sigmoid_focal(gamma=2,alpha=0.25)", BCE, focal, z, y, ref, check=True),
           _module_case("sigmoid", "asymmetric", BCE, asl, z, y, ref, check=True),
           _module_case("sigmoid", "sigmoid_focal(gamma=2,alpha=0.25) [reference]", BCE, focal, z, y, ref,
                        "reference"),
           _module_case("sigmoid", "asymmetric [reference]", BCE, asl, z, y, ref, "reference")]
    mods = {
        "sigmoid_focal(gamma=2,pos_weight,smoothing)": L.SigmoidFocalLoss(
            gamma=2.0, pos_weight=torch.full((c,), 3.0), label_smoothing=0.05),
        "bce(pos_weight)": L.BinaryCrossEntropyLoss(pos_weight=torch.full((c,), 3.0)),
        "distribution_balanced": L.DistributionBalancedLoss(counts=counts, num_samples=n),
        "dice(multilabel)": L.SoftDiceLoss(kind="multilabel"),
        "tversky(multilabel)": L.TverskyLoss(kind="multilabel", alpha=0.3, beta=0.7),
        "hierarchy": L.HierarchyPenalty(parent_of=parents),
    }
    return key, [_module_case("sigmoid", k, BCE, m.to(device), z, y, ref) for k, m in mods.items()]


def supcon_cases(batches, dim: int, classes: int, device: str, dtype) -> list[Case]:
    from pytorch_metric_learning.losses import SupConLoss as PMLSupCon

    pml = PMLSupCon(temperature=0.1)
    out = []
    for b in sorted(batches, reverse=True):  # the target (largest batch) first
        g = torch.Generator(device="cpu").manual_seed(b)
        e = torch.randn(b, dim, generator=g).to(device, dtype)
        y = torch.randint(0, classes, (b,), generator=g).to(device)
        ours_v = L.supervised_contrastive_loss(e, y, temperature=0.1).item()
        ref_v = pml(e, y).item()
        check = {"value": ours_v, "reference_value": ref_v, "rel_diff": abs(ours_v - ref_v) / abs(ref_v)}
        if b == max(batches):
            check.update(agreement(lambda a, y=y: L.supervised_contrastive_loss(a, y, temperature=0.1), e))
        cand = fwd_bwd(lambda a, y=y: L.supervised_contrastive_loss(a, y, temperature=0.1), e)
        ref = fwd_bwd(lambda a, y=y: pml(a, y), e)
        out.append(Case("supcon", f"supcon(batch={b},dim={dim})", PML, cand, ref, "auto", [b, dim], check))
        if b == max(batches):
            out.append(Case("supcon", f"supcon(batch={b},dim={dim}) [reference]", PML, cand, ref, "reference",
                            [b, dim], check))
    return out


def _targets(results: list[dict], batches) -> dict:
    focal = next((r["ratio"] for r in results if r["loss"] == "softmax_focal(gamma=2)"), None)
    sup = next((r["ratio"] for r in results if r["group"] == "supcon" and r["mode"] == "auto"
                and r["shape"][0] == max(batches)), None)
    return {
        "focal_vs_cross_entropy": {"target": 1.3, "ratio": focal, "met": focal is not None and focal <= 1.3,
                                   "applies_to": "cuda"},
        "supcon_vs_pml": {"target": 0.5, "ratio": sup, "met": sup is not None and sup <= 0.5, "applies_to": "cuda"},
    }


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--classes", type=int, default=90)
    ap.add_argument("--batches", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--supcon-classes", type=int, default=20)
    ap.add_argument("--iters", type=int, default=None, help="passes per timing (default 20 cpu, 50 cuda)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default 1 on cpu: stable ratios on a shared machine)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="stop starting new cases after this many seconds (default 40 on cuda; none on cpu; the GPU kit passes 15 s under its stage cap)")
    ap.add_argument("--out", type=Path, default=None)
    return ap.parse_args(argv)


def _report(args, argv, iters, results, skipped, started) -> dict:
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    return {
        "benchmark": "losses",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": args.device, "device_name": device_name, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "dtype": args.dtype,
        "iters": iters, "rounds": args.rounds, "clock": _CLOCK["clock"].__name__,
        "kernel_mode_default": _fused.kernel_mode() if _fused else None,
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "targets": _targets(results, args.batches), "results": results, "skipped": skipped,
    }


def _write(out: Path, report: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out)


def main(argv=None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    if args.threads or args.device == "cpu":
        torch.set_num_threads(args.threads or 1)
    if args.device == "cpu" and torch.get_num_threads() == 1:
        _CLOCK["clock"] = time.process_time
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda requested but CUDA is not available", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype)
    iters = args.iters or (50 if args.device == "cuda" else 20)
    budget = args.budget_s if args.budget_s is not None else (40.0 if args.device == "cuda" else None)
    out = args.out or ROOT / "results" / f"losses-{args.device}.json"
    warnings.simplefilter("ignore")
    soft_key, soft_rest = softmax_cases(args.n, args.classes, args.device, dtype)
    sig_key, sig_rest = sigmoid_cases(args.n, args.classes, args.device, dtype)
    sup = supcon_cases(args.batches, args.dim, args.supcon_classes, args.device, dtype)
    order = soft_key[:1] + sup[:1] + sig_key[:2] + soft_key[1:] + sup[1:2] + sig_key[2:] + sup[2:] + soft_rest + sig_rest
    results, skipped = [], []
    for case in order:
        if budget is not None and time.perf_counter() - started > budget:
            skipped.append(case.name)
            continue
        if _fused is None and case.mode != "auto":
            continue
        previous = _fused.set_kernel_mode(case.mode) if _fused else None
        try:
            n_iters = max(1, iters // 2) if case.group == "supcon" else iters
            r = compare(case.candidate, case.reference, iters=n_iters, rounds=args.rounds,
                        warmup=2 if case.group == "supcon" else 3, device=args.device)
        finally:
            if _fused:
                _fused.set_kernel_mode(previous)
        results.append({"group": case.group, "loss": case.name, "reference": case.reference_name,
                        "mode": case.mode, "shape": case.shape, **r, **case.check})
        agree = case.check.get("fused_vs_reference_value_rel_diff")
        print(f"{case.name:52s} {r['time_ms']:9.3f} ms   {case.reference_name} {r['reference_ms']:8.3f} ms   "
              f"ratio {r['ratio']:.2f}x   (first call {r['first_call_ms']:.0f} ms"
              + ("" if agree is None else f"; fused vs reference value {agree:.1e}") + ")", flush=True)
        _write(out, _report(args, argv, iters, results, skipped, started))
    report = _report(args, argv, iters, results, skipped, started)
    _write(out, report)
    t = report["targets"]
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}x"  # noqa: E731
    print(f"targets: focal {fmt(t['focal_vs_cross_entropy']['ratio'])} (<= 1.3 on GPU); supcon "
          f"{fmt(t['supcon_vs_pml']['ratio'])} (<= 0.5 on GPU); {len(skipped)} case(s) skipped by the budget -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
