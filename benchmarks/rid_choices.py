"""What two of RID's open choices do at the start of training, on the embedded setting (MNIST-1D,
wrn1d-16-2 -> wrn1d-10-1, post-activation), one thread, a few seconds:

* the spread (standard deviation over a batch of 512 training signals, training mode) of each
  method layer's output at initialisation, under ``init: kaiming`` (the authors') and ``pytorch``
  (pidkd's own), the student's classifier initialised alike (``classifier_init``): RID's teacher
  filters, student filters and heads (flat and pooled), VID's regressors, the student's logits;
  the range over the three distilled layers;
* how much of RID's student-phase loss and of its gradient (the student's and the student
  filters' parameters) the fixed side's BatchNorm mode changes (``fixed_side_bn: train`` against
  ``eval``, the same weights and batch): at initialisation, and after one filter epoch (the
  teacher filters trained on the 1,000 training signals, their running statistics with them).

    PIDKD_THREADS=1 PYTHONPATH=. python benchmarks/rid_choices.py [--teacher untrained|trained]
    PIDKD_THREADS=1 PYTHONPATH=. python benchmarks/rid_choices.py --runs 3 [--method baseline]

The trained teacher is the embedded profile's (60 epochs of Adam, trained into a temporary folder).
``--runs S`` instead trains the embedded profile's RID (80 epochs) under both teachers for seeds
0..S-1, with its pinned own choices and with the authors' (flat head, Kaiming init of the method's
layers and the student's classifier, a = 5, training-mode fixed side, floor rounds), and prints the
final validation and test accuracies (mean and standard deviation over seeds); ``--method baseline``
the baseline with each classifier init.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import torch

from pidkd.distill import batching, data
from pidkd.distill.methods import FILTER, STUDENT, Outputs, build_method
from pidkd.distill.models import build_model, feature_positions
from pidkd.study import experiment
from pidkd.study.profiles import Profile

STUDENT_MODEL, OPTIONS = "wrn1d-10-1", {"block": "post"}


def spreads(teacher, x: torch.Tensor, init: str) -> dict[str, list[float]]:
    """The standard deviation of each method layer's output on ``x`` at initialisation (seed 0)."""
    torch.manual_seed(0)
    student = build_model(STUDENT_MODEL, 10, 1, **OPTIONS, classifier_init=init)
    shape = {"student_channels": student.feature_channels, "teacher_channels": teacher.feature_channels,
             "num_classes": 10, "feature_positions": feature_positions(student, x[0])}
    rid = build_method("rid", **shape, init=init).train()
    pooled = build_method("rid", **shape, init=init, head="pooled").train()
    vid = build_method("vid", **shape, init=init).train()
    with torch.no_grad():
        logits, s = student.train()(x)
        t = teacher(x).features
        filtered = [f(t_l) for f, t_l in zip(rid.teacher_filters, t)]
        return {
            "RID teacher filter f_t(T)": [f.std().item() for f in filtered],
            "RID student filter f_s(S)": [f(s_l).std().item() for f, s_l in zip(rid.student_filters, s)],
            "RID flat head h(f_t(T))": [h(f).std().item() for h, f in zip(rid.heads, filtered)],
            "RID pooled head h(f_t(T))": [h(f(t_l)).std().item() for h, f, t_l in zip(pooled.heads, pooled.teacher_filters, t)],
            "VID regressor r(S)": [r(s_l).std().item() for r, s_l in zip(vid.regressors, s)],
            "student logits": [logits.std().item()],
        }


def bn_share(teacher, train, x: torch.Tensor, y: torch.Tensor, filter_epoch: bool) -> tuple[float, float]:
    """|loss(train) - loss(eval)| / loss(eval) and ||g(train) - g(eval)|| / ||g(eval)|| of RID's
    student phase (paper defaults otherwise), from the same weights."""
    torch.manual_seed(0)
    student = build_model(STUDENT_MODEL, 10, 1, **OPTIONS)
    method = build_method("rid", student_channels=student.feature_channels, teacher_channels=teacher.feature_channels,
                          num_classes=10, feature_positions=feature_positions(student, x[0]), rounds=1,
                          filter_fraction=0.5, fixed_side_bn="eval")
    if filter_epoch:  # epoch 0 of 2 is the filter phase: the embedded filter rate, batches of 128
        method.train()
        assert method.begin_epoch(0, 2) == FILTER
        optimizer = torch.optim.SGD(method.phase_parameters(FILTER), lr=0.2, momentum=0.9, nesterov=True,
                                    weight_decay=5e-4)
        student.eval()
        for xb, yb in batching.batches(train, 128, shuffle=True, seed=0):
            with torch.no_grad():
                s_out = Outputs(*student(xb))
            optimizer.zero_grad()
            method.loss(FILTER, s_out, teacher(xb), yb).total.backward()
            optimizer.step()
    results = []
    for mode in ("train", "eval"):
        method.params = method.params.model_copy(update={"fixed_side_bn": mode})
        method.train()
        assert method.begin_epoch(1, 2) == STUDENT
        student.train()
        state = {k: v.clone() for k, v in method.state_dict().items()}
        loss = method.loss(STUDENT, Outputs(*student(x)), teacher(x), y)
        parameters = list(student.parameters()) + method.phase_parameters(STUDENT)
        grads = torch.autograd.grad(loss.total, parameters)
        results.append((loss.total.item(), torch.cat([g.flatten() for g in grads])))
        method.load_state_dict(state)  # the running statistics a training-mode pass moved
    (loss_train, g_train), (loss_eval, g_eval) = results
    return abs(loss_train - loss_eval) / loss_eval, ((g_train - g_eval).norm() / g_eval.norm()).item()


AUTHORS = {
    "methods.rid": {"head": "flat", "init": "kaiming", "variance_start": "a=5", "fixed_side_bn": "train",
                    "round_length": "floor"},
    "datasets.mnist1d.student_options": {"block": "post", "classifier_init": "kaiming"},
}


def runs(seeds: int, method: str) -> None:
    """Final accuracies of embedded runs of ``method`` with pidkd's own choices and with the authors'."""
    print(f"embedded {method}, 80 epochs, seeds 0-{seeds - 1}: final accuracy, mean (sd)")
    for label, overrides in (("own (embedded)", {}), ("authors'", AUTHORS)):
        profile = Profile.load("embedded", overrides)
        for teacher in ("trained", "untrained") if method != "baseline" else ("none",):
            final = [experiment.run(profile.config("mnist1d", teacher if method != "baseline" else "trained", method, seed),
                                    device="cpu", progress=False).metrics.iloc[-1] for seed in range(seeds)]
            cells = [torch.tensor([row[column] for row in final]) for column in ("val_acc", "test_acc")]
            print(f"{label:16s} {teacher:10s} " + "  ".join(
                f"{name} {c.mean():.3f} ({c.std():.3f})" for name, c in zip(("val", "test"), cells)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", choices=("untrained", "trained"), default="untrained")
    parser.add_argument("--runs", type=int, metavar="S", help="train S seeds of embedded runs each way instead")
    parser.add_argument("--method", choices=("rid", "baseline"), default="rid", help="the method of --runs")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("PIDKD_THREADS", "1")))
    if args.runs:
        with tempfile.TemporaryDirectory() as results:
            os.environ["PIDKD_RESULTS"] = results
            return runs(args.runs, args.method)
    profile = Profile.load("embedded")
    with tempfile.TemporaryDirectory() as results:
        os.environ["PIDKD_RESULTS"] = results
        config = profile.config("mnist1d", args.teacher, "rid", 0).teacher
        teacher = experiment.make_teacher(config, "mnist1d", device="cpu", progress=False)
    train = data.load_dataset("mnist1d", split="train", samples_per_class=100, validation_per_class=100, seed=0)
    x, y = train.tensors[0][:512], train.tensors[1][:512]
    print(f"{args.teacher} teacher; standard deviation at initialisation (range over layers)")
    print(f"{'output':28s} {'init kaiming':>14s} {'init pytorch':>14s}")
    kaiming, pytorch = spreads(teacher, x, "kaiming"), spreads(teacher, x, "pytorch")
    for name in kaiming:
        cells = [f"{min(v):.2f}-{max(v):.2f}" for v in (kaiming[name], pytorch[name])]
        print(f"{name:28s} {cells[0]:>14s} {cells[1]:>14s}")
    print("fixed_side_bn train vs eval, RID's student phase: relative change of the loss, of the gradient")
    for filter_epoch in (False, True):
        loss, grad = bn_share(teacher, train, x, y, filter_epoch)
        print(f"{'after one filter epoch' if filter_epoch else 'at initialisation':28s} {loss:14.3f} {grad:14.3f}")


if __name__ == "__main__":
    main()
