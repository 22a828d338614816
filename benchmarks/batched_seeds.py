"""Whether the seeds of one embedded configuration train faster as one batched model than as
separate runs, and whether they give the same numbers: feasibility only, nothing in pidkd uses it.

    python benchmarks/batched_seeds.py                                  # baseline, 5 seeds, 8 epochs, 3 repeats
    python benchmarks/batched_seeds.py --methods baseline vid --epochs 8
    python benchmarks/batched_seeds.py --epochs 80 --repeats 1          # equivalence over a whole run
    python benchmarks/batched_seeds.py --epochs 8 --repeats 1 --precision fp64

The embedded student (``wrn1d-10-1``, post-activation) trains on MNIST-1D's 1,000 training signals
with the embedded recipe (SGD 0.05, momentum 0.9, Nesterov, weight decay 5e-4, batch 128, x0.2 at
1/2 and 2/3 of ``--epochs``; VID at weight 10 with clipping at 100, from an untrained teacher of each
seed), evaluating the validation and test splits every ``--evaluate-every`` epochs and after the last,
for each of ``--seeds`` seeds in two ways, alternately in one process on one thread:

* sequential: one :func:`pidkd.distill.loop.fit` run a seed, built as :func:`pidkd.study.experiment.run` builds it
  (no checkpoint, no representations saved);
* batched: the K students folded into one network (:func:`fold`): every convolution grouped, K
  times as wide with ``groups=K``, every BatchNorm over the K seeds' channels side by side (so each
  seed keeps its own statistics), every linear layer a per-seed matrix product (:class:`SeedLinear`);
  seed k's signals enter as input channel k, each seed drawn in its own order (its own generator,
  reseeded each epoch as ``fit`` reseeds it), and one SGD over the folded parameters (SGD is
  elementwise, so it is K SGDs). VID's regressors are folded the same way.

It prints, per seed, the largest difference between the two ways in each epoch's training loss, in
the final test accuracy and in the final weights (the folded weights cut back per seed), then the
median wall seconds of each way and their ratio. A control says how large a rounding-sized change
is: sequential runs whose initial weights are one float step up.

Measured (a 2-core machine shared with other jobs, one thread, 5 seeds): in fp64 the two ways agree
to 1e-15 in the baseline's losses and weights (VID: 1e-11 at worst, less than the control's 7e-9) and
in every accuracy; in fp32 they differ from the first epoch on, as much as the control does (float32
training here amplifies rounding). Batched is 1.1x as fast for the baseline (8 and 80 epochs) and
0.9-1.1x for VID: the convolutions, BatchNorms and VID's regressors cost the same per example at
5 x 128 examples as at 128, so only per-call overhead is saved.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from run_time import data
from torch import Tensor, nn
from torch.utils.data import Dataset

from pidkd.distill.batching import batches
from pidkd.distill.loop import _with_teacher_outputs, epoch_seed, fit
from pidkd.distill.methods import build_method
from pidkd.distill.methods.base import Variance, gaussian_nll
from pidkd.distill.models import build_model, feature_positions
from pidkd.distill.representations import BATCH_SIZE
from pidkd.distill.settings import Recipe, Speed, built_in, float_dtype, resolve_device
from pidkd.distill.teachers import Teacher

STUDENT, TEACHER = "wrn1d-10-1", "wrn1d-16-2"
METHOD_PARAMS = {"baseline": {}, "vid": {"weight": 10.0}}
"""The embedded profile's choices: VID at the weight its sweep picked (the paper variant)."""


# --------------------------------------------------------------------------- folding K networks into one


class SeedLinear(nn.Module):
    """K linear layers side by side: (..., K * in) -> (..., K * out), seed k's block through its own
    weight. The weight is (K, out, in), so ``weight.view(K, -1)[k]`` is seed k's, as for every folded
    parameter."""

    def __init__(self, layers: list[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))
        has_bias = layers[0].bias is not None
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers])) if has_bias else None

    def forward(self, x: Tensor) -> Tensor:
        k, _, inputs = self.weight.shape
        per_seed = x.unflatten(-1, (k, inputs)).movedim(-2, 0).flatten(1, -2)  # (K, rows, in)
        y = torch.bmm(per_seed, self.weight.transpose(1, 2))
        if self.bias is not None:
            y = y + self.bias[:, None]
        # contiguous: BatchNorm and ReLU on the strided view cost several times a copy
        return y.unflatten(1, x.shape[:-1]).movedim(0, -2).flatten(-2).contiguous()


def _folded(modules: list[nn.Module]) -> nn.Module | None:
    """One module that computes ``modules`` (the same layer of K networks) side by side on channels,
    or None for a module without parameters of its own."""
    first, k = modules[0], len(modules)
    if isinstance(first, nn.Conv1d):
        layer = nn.Conv1d(k * first.in_channels, k * first.out_channels, first.kernel_size, first.stride,
                         first.padding, first.dilation, k * first.groups, first.bias is not None)
    elif isinstance(first, nn.BatchNorm1d):
        layer = nn.BatchNorm1d(k * first.num_features, first.eps, first.momentum)
    elif isinstance(first, nn.Linear):
        return SeedLinear(modules)
    elif isinstance(first, Variance):
        layer = Variance(k * first.a.numel(), first.eps, "a=5")
    elif any(True for _ in first.parameters(recurse=False)):
        raise TypeError(f"cannot fold {type(first).__name__}")
    else:
        return None
    with torch.no_grad():
        for name, value in layer.named_parameters(recurse=False):
            value.copy_(torch.cat([getattr(m, name) for m in modules]))
        for name, value in layer.named_buffers(recurse=False):
            value.copy_(first.num_batches_tracked if name == "num_batches_tracked"
                        else torch.cat([getattr(m, name) for m in modules]))
    return layer


def fold(networks: list[nn.Module]) -> nn.Module:
    """``networks`` (the same architecture, K initialisations) as one network of K times the channels
    whose channel block k is network k: its own ``forward`` runs unchanged on inputs whose channels
    are the K networks' inputs side by side. Every folded parameter and buffer holds seed k's values
    at ``.view(K, -1)[k]`` (see :func:`unfold`)."""
    folded = copy.deepcopy(networks[0])
    for name, _ in list(networks[0].named_modules()):
        if not name:
            continue
        replacement = _folded([net.get_submodule(name) for net in networks])
        if replacement is not None:
            parent, _, child = name.rpartition(".")
            setattr(folded.get_submodule(parent) if parent else folded, child, replacement)
    return folded


def unfold(folded: nn.Module, like: nn.Module, k: int, seeds: int) -> dict[str, Tensor]:
    """Seed ``k``'s state dict (shaped as ``like``'s) cut out of ``folded``."""
    shapes = like.state_dict()
    return {name: value if name.endswith("num_batches_tracked") else value.reshape(seeds, -1)[k].view(shapes[name].shape)
            for name, value in folded.state_dict().items()}


# --------------------------------------------------------------------------- the two ways


@dataclass
class Trained:
    """What a way of training returns for each seed."""

    train_loss: list[list[float]]
    test_acc: list[float]
    weights: list[dict[str, Tensor]]
    seconds: float


def build(seed: int, method_name: str, test: Dataset, precision: str) -> tuple[nn.Module, nn.Module, Teacher | None]:
    """Seed ``seed``'s student, method and (for VID) untrained teacher, drawn as pidkd.study.experiment.run draws them."""
    teacher = None
    with built_in(precision):
        if method_name != "baseline":
            torch.manual_seed(seed)
            teacher = Teacher(build_model(TEACHER, 10, 1, block="post"), "untrained")
        torch.manual_seed(seed)
        student = build_model(STUDENT, 10, 1, block="post")
        method = build_method(method_name, student_channels=student.feature_channels,
                              teacher_channels=(teacher or student).feature_channels, num_classes=10,
                              feature_positions=feature_positions(student, test[0][0]), **METHOD_PARAMS[method_name])
    return student, method, teacher


def recipe_for(method_name: str, epochs: int) -> Recipe:
    """The embedded recipe with its milestones scaled to ``epochs`` (40 and 53 of 80)."""
    return Recipe(lr=0.05, milestones=(epochs // 2, round(epochs * 2 / 3)),
                  clip_grad_norm=None if method_name == "baseline" else 100.0)


def sequential(method_name: str, seeds: list[int], splits, args, nudged: bool = False) -> Trained:
    """One ordinary pidkd run a seed; ``nudged``: every initial weight one float step up (a control:
    how far a rounding-sized change alone moves a run)."""
    train, validation, test = splits
    losses, accuracies, weights, seconds = [], [], [], 0.0
    for seed in seeds:
        student, method, teacher = build(seed, method_name, test, args.precision)
        if nudged:
            with torch.no_grad():
                for p in [*student.parameters(), *method.parameters()]:
                    p.copy_(torch.nextafter(p, torch.full_like(p, torch.inf)))
        began = time.perf_counter()
        rows = fit(student, method, train, test, recipe=recipe_for(method_name, args.epochs), epochs=args.epochs,
                   seed=seed, teacher=teacher, device="cpu", progress=False,
                   speed=Speed(precision=args.precision, workers=0), validation_set=validation,
                   evaluate_every=args.evaluate_every)
        seconds += time.perf_counter() - began
        losses.append([row["train_loss"] for row in rows])
        accuracies.append(rows[-1]["test_acc"])
        weights.append(student.state_dict())
    return Trained(losses, accuracies, weights, seconds)


def accuracies(student: nn.Module, dataset: Dataset, seeds: int, dtype: torch.dtype) -> Tensor:
    """Each seed's accuracy on ``dataset`` (the same inputs to every seed), in eval mode."""
    student.eval()
    correct = torch.zeros(seeds, dtype=torch.int64)
    with torch.inference_mode():
        for x, y in batches(dataset, BATCH_SIZE, shuffle=False):
            logits, _ = student(x.to(dtype).expand(-1, seeds, -1))
            correct += (logits.unflatten(1, (seeds, -1)).argmax(2) == y[:, None]).sum(0)
    return correct / len(dataset)


def seed_losses(method_name: str, method: nn.Module, logits: Tensor, features: list[Tensor],
                cached: list[Tensor], y: Tensor, seeds: int) -> Tensor:
    """Each seed's loss (K,) of a batch: the folded networks' outputs cut per seed, the loss of each
    computed as pidkd's method computes it."""
    logits = logits.unflatten(1, (seeds, -1))
    ce = torch.stack([F.cross_entropy(logits[:, k], y[:, k]) for k in range(seeds)])
    if method_name == "baseline":
        return ce
    params = method.params
    nll = 0.0
    for regressor, variance, s, t in zip(method.regressors, method.variances, features, cached[1:], strict=True):
        mean, v = regressor(s).unflatten(1, (seeds, -1)), variance().view(seeds, -1)
        nll = nll + torch.stack([0.5 * gaussian_nll(t[:, k], mean[:, k], v[k]) for k in range(seeds)])
    return params.ce_weight * ce + params.weight * nll


def clip_per_seed(parameters: list[nn.Parameter], max_norm: float, seeds: int) -> None:
    """``nn.utils.clip_grad_norm_`` for each seed's slice of the folded gradients on its own."""
    grads = [p.grad.view(seeds, -1) for p in parameters if p.grad is not None]
    norms = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, dim=1) for g in grads]), dim=0)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale[:, None])


def batched(method_name: str, seeds: list[int], splits, args) -> Trained:
    """The K seeds as one folded network, in a loop that does what ``fit`` does for these methods."""
    train, validation, test = splits
    k, dtype = len(seeds), float_dtype(args.precision)
    built = [build(seed, method_name, test, args.precision) for seed in seeds]
    began = time.perf_counter()
    with built_in(args.precision):  # the folded layers are made in the networks' dtype
        student = fold([b[0] for b in built])
        method = fold([b[1] for b in built]) if method_name != "baseline" else built[0][1]
    recipe = recipe_for(method_name, args.epochs)
    parameters = list(student.parameters()) + list(method.parameters())
    optimizer = recipe.optimizer_for(parameters)
    sets = [train if teacher is None else _with_teacher_outputs(train, teacher, 512, dtype) for _, _, teacher in built]
    loaders = [batches(s, recipe.batch_size, shuffle=True, seed=seed) for s, seed in zip(sets, seeds)]
    losses: list[list[float]] = [[] for _ in seeds]
    for epoch in range(args.epochs):
        for loader, seed in zip(loaders, seeds):
            loader.generator.manual_seed(epoch_seed(seed, epoch))
        for group in optimizer.param_groups:
            group["lr"] = recipe.learning_rate(epoch)
        student.train()
        method.train()
        sums, count = torch.zeros(k, dtype=torch.float64), 0
        for parts in zip(*loaders):
            x = torch.cat([p[0] for p in parts], 1).to(dtype)  # (B, K, L): seed k's signals are channel k
            y = torch.stack([p[1] for p in parts], 1)
            cached = [torch.stack([p[i] for p in parts], 1).to(dtype) for i in range(2, len(parts[0]))]
            logits, features = student(x)
            loss = seed_losses(method_name, method, logits, features, cached, y, k)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()  # seed k's parameters get the gradient of seed k's loss alone
            if recipe.clip_grad_norm is not None:
                clip_per_seed(parameters, recipe.clip_grad_norm, k)
            optimizer.step()
            sums += loss.detach().double() * len(y)
            count += len(y)
        for seed_losses_, mean in zip(losses, (sums / count).tolist()):
            seed_losses_.append(mean)
        if (epoch + 1) % args.evaluate_every == 0 or epoch + 1 == args.epochs:
            accuracies(student, validation, k, dtype)
            test_acc = accuracies(student, test, k, dtype)
    seconds = time.perf_counter() - began
    weights = [unfold(student, built[0][0], i, k) for i in range(k)]
    return Trained(losses, test_acc.tolist(), weights, seconds)


def differences(a: Trained, b: Trained) -> list[tuple[float, float, float, int]]:
    """Per seed: the largest |difference| in an epoch's training loss, in final test accuracy, in a
    final weight, and the first epoch whose loss differs by more than 1e-4 (0: none)."""
    rows = []
    for la, lb, ta, tb, wa, wb in zip(a.train_loss, b.train_loss, a.test_acc, b.test_acc, a.weights, b.weights):
        gaps = [abs(x - y) for x, y in zip(la, lb)]
        weight = max((wa[n].double() - wb[n].double()).abs().max().item() for n in wa if wa[n].is_floating_point())
        first = next((i + 1 for i, g in enumerate(gaps) if g > 1e-4), 0)
        rows.append((max(gaps), abs(ta - tb), weight, first))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["baseline"], choices=sorted(METHOD_PARAMS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--evaluate-every", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="alternations of the two ways per method")
    parser.add_argument("--precision", choices=["fp32", "fp64"], default="fp32")
    args = parser.parse_args()
    resolve_device("cpu", threads=1)
    splits = data(100, 100)
    seeds = list(range(args.seeds))
    print(f"{STUDENT} (post), {len(splits[0])} training signals, {args.seeds} seeds, {args.epochs} epochs, "
          f"{args.precision}, {torch.get_num_threads()} thread, torch {torch.__version__}")
    for method_name in args.methods:
        times: dict[str, list[float]] = {"sequential": [], "batched": []}
        for repeat in range(args.repeats):
            apart, together = sequential(method_name, seeds, splits, args), batched(method_name, seeds, splits, args)
            times["sequential"].append(apart.seconds)
            times["batched"].append(together.seconds)
            if repeat == 0:
                control = sequential(method_name, seeds, splits, args, nudged=True)
                print(f"\n{method_name}: per seed, batched against sequential, and (control) sequential with its "
                      f"initial weights one float step up against sequential")
                print(f"{'':>5} {'max |d loss|':>13} {'|d test acc|':>13} {'max |d weight|':>15} "
                      f"{'first epoch':>12} {'test acc':>8}")
                print(f"{'seed':>5} {'batched':>13} {'batched':>13} {'batched':>15} {'> 1e-4':>12} {'seq':>8} "
                      f"{'batched':>8}    control: {'loss':>8} {'test acc':>8} {'weight':>8}")
                for seed, (loss, acc, weight, first), (c_loss, c_acc, c_weight, _), ta, tb in zip(
                        seeds, differences(apart, together), differences(apart, control), apart.test_acc,
                        together.test_acc):
                    print(f"{seed:5d} {loss:13.2e} {acc:13.4f} {weight:15.2e} {first or '-':>12} {ta:8.4f} "
                          f"{tb:8.4f}             {c_loss:8.2e} {c_acc:8.4f} {c_weight:8.2e}")
        seq, bat = statistics.median(times["sequential"]), statistics.median(times["batched"])
        print(f"{method_name}: sequential {seq:.1f} s, batched {bat:.1f} s (medians of {args.repeats}; "
              f"each {', '.join(f'{a:.1f}/{b:.1f}' for a, b in zip(times['sequential'], times['batched']))}), "
              f"sequential/batched {seq / bat:.2f}")


if __name__ == "__main__":
    main()
