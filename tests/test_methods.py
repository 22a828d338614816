"""Tests of the distillation methods: losses against hand computations, RID's schedule, and which
parts one optimisation step of each phase moves (simulating the training loop)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pidkd.distill.methods import FILTER, METHODS, RID, STUDENT, TED, VID, Method, Outputs, build_method
from pidkd.distill.methods.base import Pointwise
from pidkd.errors import ConfigError
from pidkd.study import experiment
from pidkd.study.profiles import Profile

NUM_CLASSES = 3
STUDENT_CHANNELS = (2, 4)
TEACHER_CHANNELS = (3, 5)


class TinyNet(nn.Module):
    """A stack of 1x1 conv, BN, ReLU blocks whose outputs are the distilled features."""

    def __init__(self, channels: tuple[int, ...], dims: int) -> None:
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d}[dims]
        norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims]
        widths = (3, *channels)
        self.blocks = nn.ModuleList(
            nn.Sequential(conv(c_in, c_out, 1, bias=False), norm(c_out), nn.ReLU())
            for c_in, c_out in zip(widths, channels)
        )
        self.fc = nn.Linear(channels[-1], NUM_CLASSES)

    def forward(self, x: Tensor) -> Outputs:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return Outputs(self.fc(x.flatten(2).mean(2)), features)


def batch(dims: int, n: int = 8) -> tuple[Tensor, Tensor]:
    shape = (n, 3, 3, 3) if dims == 2 else (n, 3, 5)
    return torch.randn(shape), torch.arange(n) % NUM_CLASSES


OWN = {"head": "pooled", "variance_start": "v=5", "fixed_side_bn": "eval", "round_length": "balanced"}
"""pidkd's own RID choices, which these tests pin (the embedded profile's); tests/test_exact_methods.py
pins every option, the authors' choices among them."""


def make(name: str, **params: object) -> Method:
    own = OWN if name in ("rid", "ted") else {}
    return build_method(
        name,
        student_channels=STUDENT_CHANNELS,
        teacher_channels=TEACHER_CHANNELS,
        num_classes=NUM_CLASSES,
        **{**own, **params},
    )


def snapshot(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, Tensor], module: nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


def loop_step(method: Method, epoch: int, epochs: int, dims: int) -> tuple[str, set[str], set[str]]:
    """One optimisation step as the training loop takes it; returns the phase and the names of the
    method's and the student's state entries (parameters and buffers) the step changed."""
    torch.manual_seed(0)
    student, teacher = TinyNet(STUDENT_CHANNELS, dims), TinyNet(TEACHER_CHANNELS, dims).eval()
    x, y = batch(dims)
    method_before, student_before = snapshot(method), snapshot(student)
    method.train()
    phase = method.begin_epoch(epoch, epochs)
    own = method.phase_parameters(phase)
    optimiser = torch.optim.SGD(own + (list(student.parameters()) if phase == STUDENT else []), lr=0.1)
    with torch.inference_mode():
        teacher_out = teacher(x)
    if phase == FILTER:
        student.eval()
        with torch.no_grad():
            student_out = student(x)
    else:
        student.train()
        student_out = student(x)
    optimiser.zero_grad()
    method.loss(phase, student_out, teacher_out, y).total.backward()
    ids = {id(p) for p in own}
    for name, p in method.named_parameters():
        if id(p) in ids:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
        else:
            assert p.grad is None, f"{name} is fixed in phase {phase} but got a gradient"
    optimiser.step()
    return phase, changed(method_before, method), changed(student_before, student)


def names(method: nn.Module, *parts: str) -> set[str]:
    return {k for k in method.state_dict() if k.split(".")[0] in parts}


def parameter_names(method: nn.Module, *parts: str) -> set[str]:
    return {k for k, _ in method.named_parameters() if k.split(".")[0] in parts}


def hand_cross_entropy(logits: list[float], label: int) -> float:
    return math.log(sum(math.exp(z) for z in logits)) - logits[label]


# Errors


def test_unknown_method_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="baseline, kd, rid, ted, vid"):
        make("fitnet")


@pytest.mark.parametrize("name", ["kd", "vid", "rid", "ted"])
def test_unknown_parameter(name: str) -> None:
    with pytest.raises(ConfigError, match=f"methods.{name}: unknown key 'tau'; valid keys: "):
        build_method(name, student_channels=(2,), teacher_channels=(3,), num_classes=2, tau=2.0)


def test_ted_takes_rids_parameters_with_its_own_defaults() -> None:
    ted = build_method("ted", student_channels=(2,), teacher_channels=(3,), num_classes=2, variance_penalty="square",
                       weight=3.0, head="pooled")
    p = ted.params
    assert (p.rounds, p.filter_fraction, p.weight, ted.variance_penalty) == (1, 0.125, 3.0, torch.square)
    with pytest.raises(ConfigError, match="valid keys: ce_weight, weight, rounds, filter_fraction, variance_penalty, "
                                          "head, init, variance_start, fixed_side_bn, round_length$"):
        build_method("ted", student_channels=(2,), teacher_channels=(3,), num_classes=2, tau=2.0)


def test_unknown_vid_variant_lists_variants() -> None:
    with pytest.raises(ConfigError, match="^methods.vid: variant: Input should be 'paper' or 'community' \\(got 'original'\\)$"):
        make("vid", variant="original")


@pytest.mark.parametrize(
    "name, params",
    [
        ("rid", {"rounds": 0}),
        ("rid", {"variance_penalty": "cube"}),
        ("ted", {"filter_fraction": 1.5}),
        ("kd", {"temperature": 0.0}),
    ],
)
def test_bad_parameter_values(name: str, params: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        build_method(name, student_channels=(2,), teacher_channels=(3,), num_classes=2, **params)


@pytest.mark.parametrize("name", ["vid", "rid"])
def test_layer_counts_must_match(name: str) -> None:
    with pytest.raises(ConfigError, match="same, non-zero number of layers"):
        build_method(name, student_channels=(2, 4), teacher_channels=(3,), num_classes=2)


def test_rid_loss_needs_begin_epoch() -> None:
    method = make("rid")
    dummy = Outputs(torch.zeros(1, NUM_CLASSES), [])
    with pytest.raises(RuntimeError, match="begin_epoch"):
        method.loss(STUDENT, dummy, dummy, torch.zeros(1, dtype=torch.long))


def test_needs_teacher() -> None:
    assert {name: cls.needs_teacher for name, cls in METHODS.items()} == {
        "baseline": False, "kd": True, "vid": True, "rid": True, "ted": True,
    }


# Pointwise stacks


@pytest.mark.parametrize("shape", [(6, 4, 3, 5), (6, 4, 7)])
def test_pointwise_equals_1x1_convolutions(shape: tuple[int, ...]) -> None:
    """The same outputs and BatchNorm statistics as 1x1 convolutions and BatchNorm over (N, C, *)."""
    torch.manual_seed(0)
    pointwise = Pointwise((4, 8, 3))
    conv, norm = {4: (nn.Conv2d, nn.BatchNorm2d), 3: (nn.Conv1d, nn.BatchNorm1d)}[len(shape)]
    reference = nn.Sequential(conv(4, 8, 1, bias=False), norm(8), nn.ReLU(), conv(8, 3, 1, bias=False))
    with torch.no_grad():
        for mine, theirs in zip(pointwise, reference):
            if isinstance(mine, nn.Linear):
                theirs.weight.copy_(mine.weight.view_as(theirs.weight))
            elif isinstance(mine, nn.BatchNorm1d):
                theirs.weight.copy_(torch.rand(8))
                theirs.bias.copy_(torch.randn(8))
                mine.load_state_dict(theirs.state_dict())
    x = torch.randn(shape)
    output = pointwise(x)
    assert output.shape == (shape[0], 3, *shape[2:])
    torch.testing.assert_close(output, reference(x), atol=1e-5, rtol=0)
    for key, value in reference[1].state_dict().items():
        torch.testing.assert_close(pointwise[1].state_dict()[key], value, atol=1e-5, rtol=0)
    pointwise.eval()
    reference.eval()
    torch.testing.assert_close(pointwise(x), reference(x), atol=1e-5, rtol=0)


# Losses against hand computations


def test_kd_loss_by_hand() -> None:
    student = [[1.0, 2.0, 0.0], [0.5, -1.0, 0.0]]
    teacher = [[0.0, 1.0, 3.0], [2.0, 0.0, -2.0]]
    labels = [1, 0]
    tau, ce_weight, weight = 2.0, 0.5, 3.0

    def softmax(z: list[float]) -> list[float]:
        e = [math.exp(v / tau) for v in z]
        return [v / sum(e) for v in e]

    kl = sum(
        sum(p * math.log(p / q) for p, q in zip(softmax(t), softmax(s)))
        for s, t in zip(student, teacher)
    ) / 2
    ce = sum(hand_cross_entropy(s, y) for s, y in zip(student, labels)) / 2
    method = build_method(
        "kd", student_channels=(), teacher_channels=(), num_classes=3,
        ce_weight=ce_weight, weight=weight, temperature=tau,
    )
    with torch.inference_mode():
        teacher_out = Outputs(torch.tensor(teacher), [])
    logits = torch.tensor(student, requires_grad=True)
    loss = method.loss(STUDENT, Outputs(logits, []), teacher_out, torch.tensor(labels))
    assert loss.total.item() == pytest.approx(ce_weight * ce + weight * tau**2 * kl, rel=1e-6)
    assert (loss.terms["ce"].item(), loss.terms["distill"].item()) == pytest.approx((ce_weight * ce, weight * tau**2 * kl), rel=1e-6)
    loss.total.backward()
    assert logits.grad is not None


@pytest.mark.parametrize("dims", [1, 2])
def test_vid_community_loss_by_hand(dims: int) -> None:
    """Identity regressor on a positive student feature: r(S) = S, and v starts at exactly 5."""
    method = build_method(
        "vid", student_channels=(2,), teacher_channels=(2,), num_classes=2, variant="community"
    )
    assert method.params.weight == 1.0
    linears = [m for m in method.regressors[0] if isinstance(m, nn.Linear)]
    assert [m.bias for m in linears] == [None] * 3
    assert not any(isinstance(m, nn.BatchNorm1d) for m in method.regressors[0])
    with torch.no_grad():
        for m in linears:
            m.weight.copy_(torch.eye(2))
    shape = (1, 2, 2) if dims == 1 else (1, 2, 2, 1)
    s = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(shape)
    t = torch.tensor([[1.0, 0.0], [3.0, 6.0]]).view(shape)
    logits = [0.0, 1.0]
    variance = method.variances[0]()
    assert variance.tolist() == pytest.approx([5.0, 5.0], abs=1e-6)
    # (T - S)^2 = [0, 4, 0, 4]: mean 2
    expected = hand_cross_entropy(logits, 0) + 0.5 * (math.log(5.0) + 2.0 / 5.0)
    student, teacher = Outputs(torch.tensor([logits]), [s]), Outputs(torch.zeros(1, 2), [t])
    loss = method.loss(STUDENT, student, teacher, torch.tensor([0]))
    assert loss.total.item() == pytest.approx(expected, rel=1e-5)
    assert loss.terms["distill"].item() == pytest.approx(0.5 * (math.log(5.0) + 2.0 / 5.0), rel=1e-5)


def test_vid_paper_regressor_and_loss() -> None:
    torch.manual_seed(0)
    method = make("vid", variant="paper", ce_weight=0.5)
    assert method.params.weight == 100.0
    assert make("vid", variant="paper", weight=7.0).params.weight == 7.0
    linears = [m for m in method.regressors[1] if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(10, 4), (10, 10), (5, 10)]
    assert [m.bias for m in linears] == [None] * 3
    assert sum(isinstance(m, nn.BatchNorm1d) for m in method.regressors[1]) == 2
    student, teacher = TinyNet(STUDENT_CHANNELS, 2), TinyNet(TEACHER_CHANNELS, 2)
    x, y = batch(2)
    s_out, t_out = student(x), teacher(x)
    with torch.no_grad():
        method.variances[0].a.fill_(0.3)
    expected = 0.5 * F.cross_entropy(s_out.logits, y)
    for l, (s, t) in enumerate(zip(s_out.features, t_out.features)):
        v = (F.softplus(method.variances[l].a) + 1e-3).view(1, -1, 1, 1)
        regressed = method.regressors[l](s)
        expected = expected + 100.0 * (0.5 * (v.log() + (t - regressed) ** 2 / v)).mean()
    assert method.loss(STUDENT, s_out, t_out, y).total.item() == pytest.approx(expected.item(), rel=1e-5)
    # the paper variant's v starts as the authors': a = 5, v = softplus(5) + 1e-3
    assert (F.softplus(method.variances[1].a) + 1e-3).tolist() == pytest.approx([math.log1p(math.exp(5)) + 1e-3] * 5)


def identity_rid(**params: object) -> RID:
    """RID on one layer of two channels with f_t(T) = relu(T) (in eval mode), f_s(S) = 0, head
    logits = its bias, and variances v = (2, 0.5)."""
    method = build_method("rid", student_channels=(2,), teacher_channels=(2,), num_classes=3, **{**OWN, **params})
    eye = torch.eye(2)
    bn_eps = method.teacher_filters[0][1].eps
    with torch.no_grad():
        method.teacher_filters[0][0].weight.copy_(eye)
        method.teacher_filters[0][3].weight.copy_(eye * math.sqrt(1 + bn_eps))
        method.student_filters[0][3].weight.zero_()
        method.heads[0][-1].weight.zero_()
        method.heads[0][-1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
        method.variances[0].a.copy_(torch.tensor([math.log(math.expm1(v - 1e-3)) for v in (2.0, 0.5)]))
    return method


@pytest.mark.parametrize("dims,penalty", [(1, "log"), (2, "log"), (2, "square")])
def test_rid_student_loss_by_hand(dims: int, penalty: str) -> None:
    method = identity_rid(variance_penalty=penalty, ce_weight=2.0)
    method.train()
    assert method.begin_epoch(3, 40) == STUDENT
    shape = (1, 2, 2) if dims == 1 else (1, 2, 1, 2)
    t = torch.tensor([[1.0, -1.0], [2.0, 3.0]]).view(shape)
    s = torch.randn(shape)
    logits = [1.0, 0.0, 0.0]
    # f_t(T) = [[1, 0], [2, 3]], f_s(S) = 0; channel 0 over v=2, channel 1 over v=0.5
    squared = ((1 + 0) / 2.0 + (4 + 9) / 0.5) / 4
    variance_term = (math.log(2.0) + math.log(0.5)) / 2 if penalty == "log" else (2.0**2 + 0.5**2) / 2
    expected = 2.0 * hand_cross_entropy(logits, 2) + 10.0 * (variance_term + squared)
    student, teacher = Outputs(torch.tensor([logits]), [s]), Outputs(torch.zeros(1, 3), [t])
    loss = method.loss(STUDENT, student, teacher, torch.tensor([2]))
    assert loss.total.item() == pytest.approx(expected, rel=1e-5)
    assert sum(loss.terms.values()).item() == pytest.approx(expected, rel=1e-5)
    assert loss.terms["ce"].item() == pytest.approx(2.0 * hand_cross_entropy(logits, 2), rel=1e-6)
    assert loss.terms["variance"].item() == pytest.approx(10.0 * variance_term, rel=1e-5)


@pytest.mark.parametrize("dims", [1, 2])
def test_rid_filter_loss(dims: int) -> None:
    """First round: the heads' cross-entropies only; later rounds add the matching term."""
    torch.manual_seed(0)
    method = make("rid")
    with torch.no_grad():
        for head in method.heads:
            head[-1].weight.zero_()
            head[-1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
    x, y = batch(dims, n=1)
    student, teacher = TinyNet(STUDENT_CHANNELS, dims).eval(), TinyNet(TEACHER_CHANNELS, dims).eval()
    with torch.no_grad():
        s_out, t_out = student(x), teacher(x)
    method.train()
    assert method.begin_epoch(0, 20) == FILTER
    first = method.loss(FILTER, s_out, t_out, y)
    assert first.total.item() == pytest.approx(2 * hand_cross_entropy([0.0, 1.0, 2.0], y.item()), rel=1e-6)
    assert first.terms["filter_distill"].item() == 0
    assert method.begin_epoch(2, 20) == FILTER and method.round == 1
    later = method.loss(FILTER, s_out, t_out, y)
    matching = sum(
        ((method.student_filters[l](s) - method.teacher_filters[l](t)) ** 2
         / (F.softplus(method.variances[l].a) + 1e-3).view(1, -1, *[1] * dims)).mean()
        for l, (s, t) in enumerate(zip(s_out.features, t_out.features))
    )
    assert later.total.item() == pytest.approx(first.total.item() + matching.item(), rel=1e-5)
    assert later.terms["filter_distill"].item() == pytest.approx(matching.item(), rel=1e-5)


# RID's schedule


@pytest.mark.parametrize(
    "epochs, rounds, fraction, filter_epochs",
    [
        (12, 3, 0.25, {0, 4, 8}),
        (10, 3, 0.25, {0, 3, 6}),  # rounds of 3, 3, 4 epochs
        (10, 3, 0.5, {0, 1, 3, 4, 6, 7}),  # ceil(1.5) = ceil(2.0) = 2
        (7, 2, 0.5, {0, 1, 3, 4}),  # rounds of 3 and 4 epochs
        (300, 10, 0.25, {30 * r + i for r in range(10) for i in range(8)}),  # ceil(7.5) = 8
        (30, 1, 0.1, {0, 1, 2}),  # 0.1 * 30 is 3.0000000000000004 in floating point
        (8, 4, 0.25, {0, 2, 4, 6}),  # rounds of 2 epochs: ceil(0.5) = 1 filter epoch each
        (5, 2, 0.0, set()),
    ],
)
def test_rid_phase_map(epochs: int, rounds: int, fraction: float, filter_epochs: set[int]) -> None:
    method = make("rid", rounds=rounds, filter_fraction=fraction)
    phases = [method.phase(e, epochs) for e in range(epochs)]
    assert {e for e, p in enumerate(phases) if p == FILTER} == filter_epochs
    assert set(phases) <= {FILTER, STUDENT}


@pytest.mark.parametrize("epochs, rounds, fraction", [(3, 10, 0.25), (5, 2, 1.0), (4, 4, 0.25)])
def test_a_schedule_that_never_trains_the_student_is_a_config_error(epochs, rounds, fraction) -> None:
    method = make("rid", rounds=rounds, filter_fraction=fraction)
    with pytest.raises(ConfigError, match="leave no student epoch"):
        method.phase(0, epochs)
    with pytest.raises(ConfigError, match="leave no student epoch"):
        RID.check(method.params, epochs)


def test_rid_rounds_split_at_floor() -> None:
    method = make("rid", rounds=3)
    assert [method.schedule(e, 10)[0] for e in range(10)] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    with pytest.raises(ValueError):
        method.schedule(10, 10)


def test_ted_is_rid_in_one_round() -> None:
    method = make("ted")
    assert isinstance(method, TED) and isinstance(method, RID)
    assert (method.params.rounds, method.params.filter_fraction, method.params.weight) == (1, 0.125, 10.0)
    assert [method.phase(e, 16) for e in range(16)] == [FILTER] * 2 + [STUDENT] * 14
    assert [method.schedule(e, 300)[1] for e in range(300)].count(FILTER) == 38


# One step of each phase, as the loop takes it


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("epoch", [0, 1, 3])  # first-round filter, student, second-round filter
def test_rid_step_moves_only_its_phase(dims: int, epoch: int) -> None:
    method = make("rid", rounds=2)
    assert method.variances[0]().tolist() == pytest.approx([5.0] * 2, abs=1e-6)
    phase, method_moved, student_moved = loop_step(method, epoch, 6, dims)
    assert phase == (STUDENT if epoch == 1 else FILTER)
    if phase == FILTER:
        # BN statistics of the teacher filters move; the student filters' do not
        assert method_moved == names(method, "teacher_filters", "heads")
        assert student_moved == set()
    else:
        assert method_moved == names(method, "student_filters", "variances")
        assert student_moved == set(TinyNet(STUDENT_CHANNELS, dims).state_dict())


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("variant", ["paper", "community"])
def test_vid_step_moves_regressors_and_variances(dims: int, variant: str) -> None:
    method = make("vid", variant=variant)
    assert isinstance(method, VID) and method.phase_parameters(FILTER) == []
    phase, method_moved, student_moved = loop_step(method, 0, 1, dims)
    assert phase == STUDENT
    assert parameter_names(method, "regressors", "variances") <= method_moved
    assert student_moved == set(TinyNet(STUDENT_CHANNELS, dims).state_dict())


@pytest.mark.parametrize("name", ["baseline", "kd"])
def test_logit_methods_step(name: str) -> None:
    method = build_method(
        name,
        student_channels=STUDENT_CHANNELS,
        teacher_channels=TEACHER_CHANNELS,
        num_classes=NUM_CLASSES,
    )
    phase, method_moved, student_moved = loop_step(method, 0, 1, 2)
    assert (phase, method_moved) == (STUDENT, set())
    assert student_moved == set(TinyNet(STUDENT_CHANNELS, 2).state_dict())


# On the embedded data, through the training loop


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_trains_two_epochs_on_embedded_data(results, dataset: str, name: str) -> None:
    overrides = {
        "teacher_training.epochs": 1,
        "student_training.epochs": 2,
        "student_training.recipe.milestones": [],
        "student_training.pid_epochs": [],
        f"datasets.{dataset}.samples_per_class": 30,
    }
    if name in ("rid", "ted"):
        overrides[f"methods.{name}.rounds"] = 1  # two epochs: one filter epoch, one student epoch
    config = Profile.load("embedded", overrides).config(dataset, "noisy", name, 0)
    metrics = experiment.run(config, device="cpu", progress=False).metrics
    assert len(metrics) == 2 and metrics["train_loss"].notna().all()
    if name in ("rid", "ted"):
        assert list(metrics["phase"]) == [FILTER, STUDENT]


def test_a_method_takes_its_resolved_params_as_they_are():
    params = RID.Params(weight=3.0, head="pooled")
    shape = dict(student_channels=(4,), teacher_channels=(8,), num_classes=10)
    assert build_method("rid", params=params, **shape).params is params  # not validated again from a dump
    for wrong in (dict(params=TED.Params()), dict(params=params, weight=1.0)):
        with pytest.raises(ConfigError, match="takes its own Params"):
            build_method("rid", **shape, **wrong)
