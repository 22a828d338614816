"""Every method and variant pinned exactly: losses and gradients in float64 on fixed tensors against
re-derivations written here from docs/method.md's equations (plain functional ops, the architecture
spelt out), and the paper-prototype configuration against a re-derivation of the authors' code;
which state each RID phase moves; the initialisations; RID's schedule under both round lengths.
Nothing here depends on the machine: float64, fixed tensors, agreement to 1e-10."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pidkd.distill.data import load_dataset
from pidkd.distill.loop import fit
from pidkd.distill.methods import FILTER, STUDENT, Method, Outputs, build_method
from pidkd.distill.methods.rid import rid_schedule
from pidkd.distill.models import build_model
from pidkd.distill.settings import Recipe
from pidkd.distill.teachers import Teacher
from pidkd.study.profiles import Profile

TOL = {"rtol": 1e-10, "atol": 1e-10}
K = 3
N = 5
SHAPES = ((3, 2), (2, 2))
"""The positions (H, W) of the two distilled maps."""
STUDENT_CHANNELS, TEACHER_CHANNELS = (2, 3), (3, 4)
BN_EPS, BN_MOMENTUM = 1e-5, 0.1


def fixed(*shape: int, seed: int, scale: float = 1.0) -> Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def inputs(student_channels=STUDENT_CHANNELS, teacher_channels=TEACHER_CHANNELS, shapes=SHAPES):
    """Fixed student outputs (leaves, so their gradients show), teacher outputs and labels."""
    s = [fixed(N, c, *hw, seed=10 + l).requires_grad_() for l, (c, hw) in enumerate(zip(student_channels, shapes))]
    t = [fixed(N, c, *hw, seed=20 + l) for l, (c, hw) in enumerate(zip(teacher_channels, shapes))]
    logits = fixed(N, K, seed=30).requires_grad_()
    return Outputs(logits, s), Outputs(fixed(N, K, seed=31), t), torch.tensor([0, 1, 2, 1, 0])


def method_for(name: str, student_channels=STUDENT_CHANNELS, teacher_channels=TEACHER_CHANNELS, shapes=SHAPES,
               **params: object) -> Method:
    """Method ``name`` in float64 with every parameter and BatchNorm statistic set from fixed draws."""
    method = build_method(name, student_channels=student_channels, teacher_channels=teacher_channels, num_classes=K,
                          feature_positions=tuple(math.prod(hw) for hw in shapes), **params).double()
    with torch.no_grad():
        for i, (_, p) in enumerate(sorted(method.named_parameters())):
            p.copy_(fixed(*p.shape, seed=100 + i, scale=0.5))
        for i, (name, b) in enumerate(sorted(method.named_buffers())):
            if name.endswith("running_mean"):
                b.copy_(fixed(*b.shape, seed=200 + i, scale=0.3))
            elif name.endswith("running_var"):
                b.copy_(0.5 + fixed(*b.shape, seed=200 + i).abs())
    return method


# --------------------------------------------------------------------------- the re-derivations


class Leaves:
    """Detached copies of a method's parameters and statistics, by name, for a re-derivation."""

    def __init__(self, method: nn.Module) -> None:
        self.params = {n: p.detach().clone().requires_grad_() for n, p in method.named_parameters()}
        self.buffers = {n: b.detach().clone() for n, b in method.named_buffers()}

    def __getitem__(self, name: str) -> Tensor:
        return self.params[name]

    def bn(self, x: Tensor, prefix: str, training: bool) -> Tensor:
        """BatchNorm over every axis but the channels, with batch or running statistics."""
        return F.batch_norm(x, self.buffers[f"{prefix}.running_mean"], self.buffers[f"{prefix}.running_var"],
                            self[f"{prefix}.weight"], self[f"{prefix}.bias"], training, BN_MOMENTUM, BN_EPS)


def conv1x1(x: Tensor, weight: Tensor) -> Tensor:
    return F.conv2d(x, weight[:, :, None, None])


def filter_ref(x: Tensor, w: Leaves, prefix: str, training: bool) -> Tensor:
    """f(x) = conv(relu(BN(conv(x)))): RID's teacher and student filters (docs/method.md)."""
    hidden = F.relu(w.bn(conv1x1(x, w[f"{prefix}.0.weight"]), f"{prefix}.1", training))
    return conv1x1(hidden, w[f"{prefix}.3.weight"])


def head_ref(z: Tensor, w: Leaves, l: int, head: str) -> Tensor:
    """h_l: flat, Linear(ReLU(every position)); pooled, Linear(mean over positions)."""
    if head == "flat":
        return F.linear(F.relu(z.reshape(len(z), -1)), w[f"heads.{l}.2.weight"], w[f"heads.{l}.2.bias"])
    return F.linear(z.mean((2, 3)), w[f"heads.{l}.1.weight"], w[f"heads.{l}.1.bias"])


def variance_ref(a: Tensor, eps: float) -> Tensor:
    return torch.log1p(torch.exp(a)).view(1, -1, 1, 1) + eps


def rid_ref(w: Leaves, phase: str, round_: int, s: list[Tensor], t: list[Tensor], logits: Tensor, y: Tensor,
            p: dict) -> Tensor:
    """RID's loss (docs/method.md): the fixed side detached and, under fixed_side_bn eval, with its
    running statistics."""
    fixed_trains = p["fixed_side_bn"] == "train"
    total = torch.zeros((), dtype=torch.float64)
    for l, (s_l, t_l) in enumerate(zip(s, t)):
        v = variance_ref(w[f"variances.{l}.a"], 1e-3)
        if phase == FILTER:
            z = filter_ref(t_l, w, f"teacher_filters.{l}", True)
            total = total + F.cross_entropy(head_ref(z, w, l, p["head"]), y)
            if round_ > 0:
                target = filter_ref(s_l.detach(), w, f"student_filters.{l}", fixed_trains).detach()
                total = total + ((z - target) ** 2 / v.detach()).mean()
        else:
            z = filter_ref(t_l, w, f"teacher_filters.{l}", fixed_trains).detach()
            penalty = torch.log(v) if p["variance_penalty"] == "log" else v**2
            d2 = (filter_ref(s_l, w, f"student_filters.{l}", True) - z) ** 2
            total = total + p["weight"] * (penalty.mean() + (d2 / v).mean())
    return total if phase == FILTER else total + p["ce_weight"] * F.cross_entropy(logits, y)


def vid_ref(w: Leaves, s: list[Tensor], t: list[Tensor], logits: Tensor, y: Tensor, p: dict) -> Tensor:
    """VID (docs/method.md): paper, conv-BN-ReLU-conv-BN-ReLU-conv; community, conv-ReLU-conv-ReLU-conv."""
    total = p["ce_weight"] * F.cross_entropy(logits, y)
    for l, (s_l, t_l) in enumerate(zip(s, t)):
        r = f"regressors.{l}"
        if p["variant"] == "paper":
            x = F.relu(w.bn(conv1x1(s_l, w[f"{r}.0.weight"]), f"{r}.1", True))
            x = F.relu(w.bn(conv1x1(x, w[f"{r}.3.weight"]), f"{r}.4", True))
            mean = conv1x1(x, w[f"{r}.6.weight"])
        else:
            mean = conv1x1(F.relu(conv1x1(F.relu(conv1x1(s_l, w[f"{r}.0.weight"])), w[f"{r}.2.weight"])), w[f"{r}.4.weight"])
        v = variance_ref(w[f"variances.{l}.a"], 1e-3 if p["variant"] == "paper" else 1e-5)
        total = total + p["weight"] * 0.5 * (torch.log(v) + (t_l - mean) ** 2 / v).mean()
    return total


def kd_ref(logits: Tensor, t_logits: Tensor, y: Tensor, p: dict) -> Tensor:
    tau = p["temperature"]
    p_t = F.softmax(t_logits / tau, 1)
    kl = (p_t * (torch.log(p_t) - F.log_softmax(logits / tau, 1))).sum() / len(y)
    return p["ce_weight"] * F.cross_entropy(logits, y) + p["weight"] * tau**2 * kl


# --------------------------------------------------------------------------- the comparison


def compare(method: Method, phase: str, reference) -> None:
    """The method's loss and gradients (its parameters' and the student outputs') against
    ``reference(leaves, student, teacher, y)``'s, to 1e-10; a fixed part gets no gradient in either."""
    student, teacher, y = inputs(method.student_channels, method.teacher_channels,
                                 SHAPES if len(method.student_channels) == 2 else PROTOTYPE_SHAPES)
    leaves = Leaves(method)
    s_ref = [f.detach().clone().requires_grad_() for f in student.features]
    logits_ref = student.logits.detach().clone().requires_grad_()
    expected = reference(leaves, s_ref, teacher.features, logits_ref, y)
    loss = method.loss(phase, student, teacher, y)
    torch.testing.assert_close(loss.total, expected, **TOL)
    torch.testing.assert_close(sum(loss.terms.values()), expected.detach(), **TOL)  # terms add up
    loss.total.backward()
    names = list(leaves.params)
    grads = torch.autograd.grad(expected, [leaves[n] for n in names] + s_ref + [logits_ref], allow_unused=True)
    ours = [p.grad for p in method.parameters()] + [f.grad for f in student.features] + [student.logits.grad]
    assert [n for n, _ in method.named_parameters()] == names
    for name, a, b in zip(names + [f"student feature {l}" for l in range(len(s_ref))] + ["logits"], ours, grads):
        if b is None or not b.any():
            assert a is None or not a.any(), f"{name} gets a gradient the equations do not give it"
        else:
            assert a is not None, f"{name} gets no gradient"
            torch.testing.assert_close(a, b, **TOL, msg=f"gradient of {name}")


def test_baseline_exactly() -> None:
    compare(method_for("baseline"), STUDENT, lambda w, s, t, logits, y: F.cross_entropy(logits, y))


def test_kd_exactly() -> None:
    method = method_for("kd", weight=0.7, ce_weight=0.3, temperature=3.0)
    teacher_logits = inputs()[1].logits
    compare(method, STUDENT, lambda w, s, t, logits, y: kd_ref(logits, teacher_logits, y, method.params.model_dump()))


@pytest.mark.parametrize("variant", ["paper", "community"])
@pytest.mark.parametrize("init", ["kaiming", "pytorch"])
def test_vid_exactly(variant: str, init: str) -> None:
    method = method_for("vid", variant=variant, init=init, weight=3.0)
    method.train()
    compare(method, STUDENT, lambda w, s, t, logits, y: vid_ref(w, s, t, logits, y, method.params.model_dump()))


RID_OPTIONS = list(itertools.product(["flat", "pooled"], ["log", "square"], ["train", "eval"]))


@pytest.mark.parametrize("name", ["rid", "ted"])
@pytest.mark.parametrize("head, penalty, fixed_side_bn", RID_OPTIONS)
@pytest.mark.parametrize("epoch", [0, 1, 4])  # rounds of 2 epochs: round 0 filter, student; round 2 filter
def test_rid_exactly(name: str, head: str, penalty: str, fixed_side_bn: str, epoch: int) -> None:
    method = method_for(name, head=head, variance_penalty=penalty, fixed_side_bn=fixed_side_bn, weight=2.5,
                        ce_weight=0.5, rounds=4, filter_fraction=0.5)
    method.train()
    phase = method.begin_epoch(epoch, 8)
    round_ = method.round
    assert (phase, round_) == {0: (FILTER, 0), 1: (STUDENT, 0), 4: (FILTER, 2)}[epoch]
    compare(method, phase,
            lambda w, s, t, logits, y: rid_ref(w, phase, round_, s, t, logits, y, method.params.model_dump()))


# --------------------------------------------------------------------------- the authors' code


PROTOTYPE_SHAPES = ((4, 4), (2, 2), (1, 1))
PROTOTYPE_STUDENT, PROTOTYPE_TEACHER = (16, 32, 64), (32, 64, 128)
"""WRN-16-1's and WRN-40-2's group widths, on small maps."""


def authors_filter(x: Tensor, w: Leaves, prefix: str) -> Tensor:
    """A filter of the authors' code: Conv2d 1x1, BatchNorm2d, ReLU, Conv2d 1x1, the module in
    training mode (every module but the frozen teacher stays in training mode)."""
    x = F.conv2d(x, w[f"{prefix}.0.weight"].unsqueeze(-1).unsqueeze(-1))
    x = F.batch_norm(x, None, None, w[f"{prefix}.1.weight"], w[f"{prefix}.1.bias"], True, BN_MOMENTUM, BN_EPS)
    return F.conv2d(F.relu(x), w[f"{prefix}.3.weight"].unsqueeze(-1).unsqueeze(-1))


def authors_var(a: Tensor) -> Tensor:
    """Their variance: log(1 + exp(a)) + 1e-3, a parameter of shape (1, C, 1, 1)."""
    return torch.log(1 + torch.exp(a.reshape(1, -1, 1, 1))) + 1e-3


def authors_rid(w: Leaves, epoch: int, epochs: int, rounds: int, ratio: float, s, t, logits, y, alpha) -> Tensor:
    """REDStudentMultistepAlternating's loss for a batch of epoch ``epoch``: the teacher-filter
    step (CE of each head, Flatten-ReLU-Linear, plus from the second round the matching term) or
    the student step (alpha0 CE + alpha1 sum of mean(var^2 + (sf - tf)^2 / var))."""
    steps_per_round = int(epochs / rounds)
    tf = [authors_filter(t_l, w, f"teacher_filters.{l}") for l, t_l in enumerate(t)]
    sf = [authors_filter(s_l, w, f"student_filters.{l}") for l, s_l in enumerate(s)]
    var = [authors_var(w[f"variances.{l}.a"]) for l in range(len(s))]
    if epoch % steps_per_round < ratio * steps_per_round:
        cce = sum(F.cross_entropy(F.linear(F.relu(torch.flatten(tf_l, 1)), w[f"heads.{l}.2.weight"],
                                           w[f"heads.{l}.2.bias"]), y) for l, tf_l in enumerate(tf))
        dis = sum(torch.mean(torch.square(sf_l.detach() - tf_l) / v.detach()) for sf_l, tf_l, v in zip(sf, tf, var))
        return cce + float(epoch >= steps_per_round) * dis
    dis = sum(torch.mean(v**2 + torch.square(sf_l - tf_l.detach()) / v) for sf_l, tf_l, v in zip(sf, tf, var))
    return alpha[0] * F.cross_entropy(logits, y) + alpha[1] * dis


def authors_vid(w: Leaves, s, t, logits, y, alpha) -> Tensor:
    """VIDStudent's loss: regressors Conv-BN-ReLU-Conv-BN-ReLU-Conv in training mode, hsvar as above,
    alpha0 CE + alpha1 sum of 0.5 mean(log var + (t - sf)^2 / var)."""
    total = alpha[0] * F.cross_entropy(logits, y)
    for l, (s_l, t_l) in enumerate(zip(s, t)):
        r = f"regressors.{l}"
        x = s_l
        for conv, bn in ((0, 1), (3, 4)):
            x = F.conv2d(x, w[f"{r}.{conv}.weight"].unsqueeze(-1).unsqueeze(-1))
            x = F.relu(F.batch_norm(x, None, None, w[f"{r}.{bn}.weight"], w[f"{r}.{bn}.bias"], True, BN_MOMENTUM, BN_EPS))
        sf = F.conv2d(x, w[f"{r}.6.weight"].unsqueeze(-1).unsqueeze(-1))
        var = authors_var(w[f"variances.{l}.a"])
        total = total + alpha[1] * 0.5 * torch.mean(torch.log(var) + torch.square(t_l - sf) / var)
    return total


def prototype(method: str, dataset: str = "cifar10") -> Method:
    params = dict(Profile.load("paper-prototype").config(dataset, "untrained", method, 0).params)
    return method_for(method, PROTOTYPE_STUDENT, PROTOTYPE_TEACHER, PROTOTYPE_SHAPES, **params)


@pytest.mark.parametrize("name, epoch", [("rid", 0), ("rid", 20), ("rid", 29), ("rid", 30), ("rid", 299),
                                         ("ted", 0), ("ted", 49), ("ted", 50)])
def test_paper_prototype_rid_and_ted_are_the_authors_code(name: str, epoch: int) -> None:
    """The issue's acceptance test: paper-prototype's RID (10 rounds of 1/4) and TED (1 round of
    1/6) against the authors' REDStudentMultistepAlternating, in 300 epochs."""
    method = prototype(name)
    rounds, ratio = (10, 1 / 4) if name == "rid" else (1, 1 / 6)
    method.train()
    phase = method.begin_epoch(epoch, 300)
    compare(method, phase, lambda w, s, t, logits, y: authors_rid(w, epoch, 300, rounds, ratio, s, t, logits, y, (1.0, 10.0)))


def test_paper_prototype_vid_is_the_authors_code() -> None:
    method = prototype("vid")
    method.train()
    compare(method, STUDENT, lambda w, s, t, logits, y: authors_vid(w, s, t, logits, y, (1.0, 100.0)))


def test_paper_prototype_cifar100_rid_follows_the_authors_rounds() -> None:
    """251 epochs in 20 rounds of 1/5: the authors' rounds of int(251 / 20) = 12 epochs, 3 filtering."""
    params = prototype("rid", "cifar100").params
    for epoch in range(251):
        assert rid_schedule(params, epoch, 251) == (epoch // 12, FILTER if epoch % 12 < 0.2 * 12 else STUDENT)


# --------------------------------------------------------------------------- initialisation


def kaiming_bound(weight: Tensor) -> float:
    """Kaiming-uniform with fan-out and ReLU's gain: U(-b, b), b = sqrt(2) * sqrt(3 / fan_out)."""
    return math.sqrt(2.0) * math.sqrt(3.0 / weight.shape[0])


@pytest.mark.parametrize("name, params", [("rid", {"head": "flat"}), ("rid", {"head": "pooled"}), ("ted", {}),
                                          ("vid", {"variant": "paper"}), ("vid", {"variant": "community"})])
def test_the_authors_init_of_the_methods_layers(name: str, params: dict) -> None:
    """init kaiming is PyTorch's construction followed, in module order, by a Kaiming-uniform draw
    for every linear layer (1x1 convolution) and a zero bias; BatchNorm stays 1 and 0."""
    shape = {"student_channels": STUDENT_CHANNELS, "teacher_channels": TEACHER_CHANNELS, "num_classes": K,
             "feature_positions": (6, 4)}
    torch.manual_seed(0)
    authors = build_method(name, **shape, **params, init="kaiming")
    torch.manual_seed(0)
    expected = build_method(name, **shape, **params, init="pytorch")
    with torch.no_grad():
        for m in expected.modules():
            if isinstance(m, nn.Linear):
                b = kaiming_bound(m.weight)
                m.weight.copy_(torch.empty_like(m.weight).uniform_(-b, b))
                if m.bias is not None:
                    m.bias.zero_()
    for (n, a), e in zip(authors.state_dict().items(), expected.state_dict().values()):
        assert torch.equal(a, e), n
    assert any(isinstance(m, nn.Linear) for m in authors.modules())


@pytest.mark.parametrize("model, options", [("wrn1d-10-1", {"block": "post"}), ("wrn-10-1", {}), ("cnn1d-student", {})])
def test_the_classifier_init(model: str, options: dict) -> None:
    """classifier_init kaiming draws the classifier's weights like the convolutions' and zeroes its
    bias; pytorch keeps PyTorch's weights (bias zero); nothing else differs."""
    torch.manual_seed(0)
    kaiming = build_model(model, 10, 1, **options)
    torch.manual_seed(0)
    ours = build_model(model, 10, 1, **options, classifier_init="pytorch")
    b = kaiming_bound(ours.fc.weight)
    with torch.no_grad():
        expected = torch.empty_like(ours.fc.weight).uniform_(-b, b)
    assert torch.equal(kaiming.fc.weight, expected) and not kaiming.fc.bias.any() and not ours.fc.bias.any()
    assert ours.fc.weight.abs().max() <= 1 / math.sqrt(ours.fc.in_features)
    same = [k for k in ours.state_dict() if not k.startswith("fc.")]
    assert all(torch.equal(kaiming.state_dict()[k], ours.state_dict()[k]) for k in same)


@pytest.mark.parametrize("name, params, eps", [("rid", {}, 1e-3), ("ted", {}, 1e-3), ("vid", {"variant": "paper"}, 1e-3),
                                               ("vid", {"variant": "community"}, 1e-5)])
@pytest.mark.parametrize("start", ["a=5", "v=5"])
def test_variance_start(name: str, params: dict, eps: float, start: str) -> None:
    method = build_method(name, student_channels=(2,), teacher_channels=(3,), num_classes=K, feature_positions=(4,),
                          variance_start=start, **params).double()
    v = torch.cat([F.softplus(m.a) + eps for m in method.variances])
    # a is a float32 parameter: 5 exactly, or the float32 nearest to softplus^-1(5 - eps), so v = 5 to float32's 3e-7
    a = 5.0 if start == "a=5" else torch.tensor(math.log(math.expm1(5.0 - eps))).item()
    torch.testing.assert_close(v, torch.full_like(v, math.log1p(math.exp(a)) + eps), rtol=1e-12, atol=1e-12)
    assert abs(v[0].item() - 5.0) < (3e-7 if start == "v=5" else 1e-2) and (start == "v=5") == (abs(v[0].item() - 5) < 1e-3)


def test_the_defaults_are_the_papers_and_the_authors() -> None:
    rid = build_method("rid", student_channels=(2,), teacher_channels=(3,), num_classes=K, feature_positions=(4,))
    assert rid.params.model_dump() == {"ce_weight": 1.0, "weight": 10.0, "rounds": 10, "filter_fraction": 0.25,
                                       "variance_penalty": "log", "head": "flat", "init": "kaiming",
                                       "variance_start": "a=5", "fixed_side_bn": "train", "round_length": "floor"}
    vid = build_method("vid", student_channels=(2,), teacher_channels=(3,), num_classes=K)
    assert (vid.params.init, vid.params.variance_start) == ("kaiming", "a=5")


# --------------------------------------------------------------------------- what each phase moves


class Tiny(nn.Module):
    """Two conv-BN-ReLU stages on 1x8x8 digits: features at 8x8 and 4x4."""

    def __init__(self, channels: tuple[int, int]) -> None:
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv2d(1, channels[0], 3, padding=1), nn.BatchNorm2d(channels[0]), nn.ReLU()),
            nn.Sequential(nn.Conv2d(channels[0], channels[1], 3, stride=2, padding=1), nn.BatchNorm2d(channels[1]), nn.ReLU()),
        ])
        self.fc = nn.Linear(channels[1], 10)
        self.feature_channels = channels

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return self.fc(x.mean((2, 3))), features


def moved(before: dict[str, Tensor], after: dict[str, Tensor]) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.mark.parametrize("fixed_side_bn", ["train", "eval"])
def test_what_each_rid_phase_moves(fixed_side_bn: str) -> None:
    """Through the training loop, a filter epoch then a student epoch: the filter epoch trains only
    the teacher filters and heads, the student epoch only the student, its filters and the variances;
    the fixed side's BatchNorm statistics move only under fixed_side_bn train."""
    train = load_dataset("digits", split="train", samples_per_class=5)
    torch.manual_seed(0)
    student, teacher = Tiny((4, 6)), Teacher(Tiny((5, 7)), "trained")
    method = build_method("rid", student_channels=(4, 6), teacher_channels=(5, 7), num_classes=10,
                          feature_positions=(64, 16), rounds=1, filter_fraction=0.5, fixed_side_bn=fixed_side_bn)
    states = [(dict(_clone(student)), dict(_clone(method)))]
    fit(student, method, train, train, recipe=Recipe(lr=0.1, batch_size=16), epochs=2, seed=0, teacher=teacher,
        device="cpu", progress=False, after_epoch=lambda epoch, net: states.append((_clone(net), _clone(method))))
    (s0, m0), (s1, m1), (s2, m2) = states

    def part(names: set[str], *prefixes: str) -> set[str]:
        return {n for n in names if n.startswith(prefixes)}

    stats = ("running_mean", "running_var", "num_batches_tracked")
    student_stats = {n for n in s0 if n.endswith(stats)}
    filter_params = {n for n, _ in method.named_parameters() if n.startswith(("teacher_filters", "heads"))}
    student_side = {n for n, _ in method.named_parameters() if n.startswith(("student_filters", "variances"))}
    teacher_filter_stats = part({n for n in m0 if n.endswith(stats)}, "teacher_filters")
    student_filter_stats = part({n for n in m0 if n.endswith(stats)}, "student_filters")
    trains = fixed_side_bn == "train"
    # the filter epoch
    assert moved(m0, m1) == filter_params | teacher_filter_stats | (student_filter_stats if trains else set())
    assert moved(s0, s1) == (student_stats if trains else set())
    # the student epoch
    assert moved(m1, m2) == student_side | student_filter_stats | (teacher_filter_stats if trains else set())
    assert moved(s1, s2) == set(s0)


def _clone(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------- the schedule


def docs_rule(epoch: int, epochs: int, rounds: int, rho: float) -> tuple[int, str]:
    """docs/method.md, balanced: round r covers floor(rE/R) .. floor((r+1)E/R) - 1, its first ceil(rho L) filter."""
    rounds = min(rounds, epochs)
    for r in range(rounds):
        start, end = r * epochs // rounds, (r + 1) * epochs // rounds
        if start <= epoch < end:
            return r, FILTER if epoch - start < math.ceil(round(rho * (end - start), 6)) else STUDENT
    raise AssertionError(epoch)


def authors_rule(epoch: int, epochs: int, rounds: int, rho: float) -> tuple[int, str]:
    """The authors': steps_per_round = int(E / R); filter while epoch % steps_per_round < rho * steps_per_round."""
    steps = int(epochs / rounds)
    return epoch // steps, FILTER if epoch % steps < rho * steps else STUDENT


@pytest.mark.parametrize("epochs, rounds, rho", [(251, 20, 0.2), (80, 10, 0.25), (7, 3, 0.5), (300, 10, 0.25),
                                                 (300, 1, 1 / 6), (30, 1, 0.1), (10, 3, 0.25), (40, 4, 0.1)])
@pytest.mark.parametrize("round_length, rule", [("balanced", docs_rule), ("floor", authors_rule)])
def test_rid_schedule(epochs: int, rounds: int, rho: float, round_length: str, rule) -> None:
    params = build_method("rid", student_channels=(2,), teacher_channels=(2,), num_classes=K, head="pooled",
                          rounds=rounds, filter_fraction=rho, round_length=round_length).params
    assert [rid_schedule(params, e, epochs) for e in range(epochs)] == [rule(e, epochs, rounds, rho) for e in range(epochs)]


def test_the_round_lengths_differ_where_the_rounds_do_not_divide_the_epochs() -> None:
    """251 epochs, 20 rounds: the authors' 21st round holds the last 11 epochs; balanced has 20."""
    floor, balanced = ([rid_schedule(build_method("rid", student_channels=(2,), teacher_channels=(2,), num_classes=K,
                                                  head="pooled", rounds=20, filter_fraction=0.2,
                                                  round_length=r).params, e, 251) for e in range(251)]
                       for r in ("floor", "balanced"))
    assert (floor[-1][0], balanced[-1][0]) == (20, 19)
    assert [p for _, p in floor].count(FILTER) == 63 and [p for _, p in balanced].count(FILTER) == 60
