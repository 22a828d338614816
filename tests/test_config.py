"""Profiles -> Configs: names, overrides, run keys, grids, and one clear error for every bad entry."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pidkd.distill.methods import METHODS
from pidkd.errors import ConfigError
from pidkd.study import grids
from pidkd.study.profiles import Profile
from pidkd.study.sources import profile_names
from pidkd.study.spec import Variation

EMBEDDED = Profile.load("embedded")


def test_a_baseline_has_no_teacher_so_all_teacher_kinds_share_it():
    keys = {EMBEDDED.config("digits", kind, "baseline", 0).key for kind in ("trained", "untrained", "noisy")}
    assert len(keys) == 1


def test_teacher_kinds_resolve_to_the_intended_teachers():
    trained, untrained, noisy = (EMBEDDED.config("mnist1d", kind, "vid", 0).teacher for kind in ("trained", "untrained", "noisy"))
    assert trained.training.model == trained.model == "wrn1d-16-2" and trained.training.method == "baseline"
    assert untrained.training is None and EMBEDDED.spec.teachers.untrained.batch_norm == "initial"
    assert not untrained.reestimate_bn and not untrained.batch_statistics
    assert noisy.training == trained.training and noisy.noise == EMBEDDED.spec.teachers.noisy and trained.noise is None


@pytest.mark.parametrize("untrained, reestimate_bn, batch_statistics", [
    ({"batch_norm": "initial"}, False, False), ({"batch_norm": "batch"}, False, True),
    ({"batch_norm": "reestimated"}, True, False),
    ({"reestimate_bn": True}, True, False), ({"reestimate_bn": False}, False, False),  # older profiles' key
])
def test_the_untrained_teachers_batch_norm(untrained, reestimate_bn, batch_statistics):
    profile = Profile.load("embedded", {"teachers.untrained": untrained})
    teacher = profile.config("mnist1d", "untrained", "rid", 0).teacher
    assert (teacher.reestimate_bn, teacher.batch_statistics) == (reestimate_bn, batch_statistics)
    assert profile.config("mnist1d", "trained", "rid", 0).teacher.batch_statistics is False


def test_each_seed_distils_from_a_teacher_of_its_own_seed_unless_the_profile_fixes_one():
    teachers = {seed: EMBEDDED.config("mnist1d", "trained", "kd", seed).teacher for seed in EMBEDDED.seeds}
    assert [t.training.seed for t in teachers.values()] == list(EMBEDDED.seeds)
    assert all(t == EMBEDDED.teacher("mnist1d", "trained", seed) for seed, t in teachers.items())
    assert {EMBEDDED.config("mnist1d", "untrained", "kd", seed).teacher.seed for seed in EMBEDDED.seeds} == set(EMBEDDED.seeds)
    fixed = Profile.load("embedded", {"teacher_training.seed": 7})
    assert {fixed.config("mnist1d", "noisy", "kd", seed).teacher.training.seed for seed in fixed.seeds} == {7}
    assert Profile.load("paper").config("cifar10", "trained", "kd", 2).teacher.training.seed == 0  # the authors' one teacher


def test_a_teacher_may_learn_from_more_examples_than_its_students_and_only_it_changes():
    student = EMBEDDED.config("mnist1d", "trained", "rid", 0)
    assert (student.samples_per_class, student.teacher.training.samples_per_class) == (50, 680)
    assert student.validation_per_class == student.teacher.training.validation_per_class == 100
    more = Profile.load("embedded", {"teacher_training.samples_per_class": 600})
    assert more.teacher_training("mnist1d", 0).key != EMBEDDED.teacher_training("mnist1d", 0).key
    assert more.config("mnist1d", "trained", "baseline", 0).key == EMBEDDED.config("mnist1d", "trained", "baseline", 0).key
    paper = Profile.load("paper")  # unset: the students' own
    assert paper.teacher_training("cifar10", 0).samples_per_class == paper.config("cifar10", "trained", "rid", 0).samples_per_class


def test_keys_depend_on_every_setting():
    base = EMBEDDED.config("digits", "trained", "rid", 0)
    assert base.key == Profile.load("embedded").config("digits", "trained", "rid", 0).key
    assert base.key != EMBEDDED.config("digits", "trained", "rid", 1).key
    assert base.key != Profile.load("embedded", {"methods.rid.weight": 2.0}).config("digits", "trained", "rid", 0).key
    assert base.key != Profile.load("embedded", {"teacher_training.epochs": 3}).config("digits", "trained", "rid", 0).key


def test_a_parameter_at_its_default_gives_the_same_run():
    """Run keys hold every parameter's resolved value, so naming a default changes nothing."""
    default = METHODS["kd"].Params().temperature
    explicit = Profile.load("embedded", {"methods.kd": {"temperature": default}})
    implicit = Profile.load("embedded", {"methods.kd": {}})
    assert explicit.config("digits", "trained", "kd", 0) == implicit.config("digits", "trained", "kd", 0)


@pytest.mark.parametrize(
    "point, message",
    [
        (("mnist", "trained", "vid", 0), "unknown dataset 'mnist'; valid names: digits, mnist1d"),
        (("digits", "clever", "vid", 0), "unknown teacher kind 'clever'; valid names: noisy, trained, untrained"),
        (("digits", "trained", "fitnet", 0), "unknown method 'fitnet'; valid names: baseline, kd, rid, ted, vid"),
    ],
)
def test_unknown_names_list_the_valid_ones(point, message):
    with pytest.raises(ConfigError, match=message):
        EMBEDDED.config(*point)


def test_an_unknown_profile_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match=f"unknown profile 'nope'; valid names: {', '.join(profile_names())}"):
        Profile.load("nope")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"nonsense.epochs": 1}, "profile 'embedded': unknown key 'nonsense'; valid keys: description, seeds, grid"),
        ({"student_training.recipe.momentumm": 0.5},
         "student_training.recipe: unknown key 'momentumm'; valid keys: optimizer, lr, momentum"),
        ({"student_training.epoch": 3}, "student_training: unknown key 'epoch'; valid keys: epochs, recipe"),
        ({"student_training.epochs": -3}, r"student_training.epochs: Input should be greater than 0 \(got -3\)"),
        ({"methods.vid.weight": "abc"}, r"methods.vid.weight: Input should be a valid number.*\(got 'abc'\)"),
        ({"student_training.recipe.lr": math.nan}, r"student_training.recipe.lr: Input should be a finite number \(got nan\)"),
        ({"student_training.recipe.optimizer": "lbfgs"}, "student_training.recipe.optimizer: Input should be 'sgd' or 'adam'"),
        ({"seeds": []}, "seeds: Tuple should have at least 1 item"),
        ({"grid.datasets": ["cifar10"]}, "grid.datasets names cifar10 but datasets has no entry for it"),
        ({"grid.methods": ["fitnet"]}, "grid.methods.0: Input should be 'baseline', 'kd', 'vid', 'rid' or 'ted'"),
        ({"teachers.noisy.sigmaa": 1.0}, "teachers.noisy: unknown key 'sigmaa'; valid keys: fraction, sigma, replace"),
        ({"teachers.noisy.fraction": 0}, "teachers.noisy.fraction: Input should be greater than 0"),
        ({"pid.dtype": "bfloat16"}, "pid.dtype: Input should be 'float32' or 'float16'"),
        ({"datasets.mnist1d.augment": True}, "datasets.mnist1d.augment: only image datasets"),
        ({"student_training.recipe.nesterov": True, "student_training.recipe.optimizer": "sgd",
          "student_training.recipe.momentum": 0.0}, "nesterov needs momentum > 0"),
        ({"seeds.first": 0}, "override 'seeds.first': seeds is a value, not a section"),
    ],
)
def test_every_bad_entry_is_one_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message) as error:
        Profile.load("embedded", overrides)
    assert "\n" not in str(error.value)


def test_a_schedule_that_leaves_the_student_no_epoch_is_refused_before_any_run():
    profile = Profile.load("embedded", {"methods.rid.rounds": 80})
    assert profile.config("digits", "trained", "kd", 0).method == "kd"
    with pytest.raises(ConfigError, match="methods.rid with student_training.epochs 80: rounds=80 and filter_fraction=0.25 leave no student epoch"):
        profile.config("digits", "trained", "rid", 0)


def test_a_malformed_profile_file_names_the_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("extends: embedded\nseeds: [0, 1\n")
    with pytest.raises(ConfigError, match=r"broken.yaml is not valid YAML at line \d+, column \d+"):
        Profile.load(broken)


def test_a_profile_file_can_extend_a_shipped_one_but_not_itself(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: quick\nseeds: [7]\nmethods: {rid: {weight: 3}}\n")
    rid = Profile.load(str(mine)).config("cifar10", "trained", "rid", 7)
    assert rid.profile == "mine" and dict(rid.params)["weight"] == 3 and dict(rid.params)["rounds"] == 4
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"extends: {loop}\n")
    with pytest.raises(ConfigError, match="extends itself"):
        Profile.load(str(loop))


def test_shortening_epochs_alone_is_refused_naming_what_else_to_set():
    """Milestones at or beyond the epochs never take effect and PID epochs beyond them are never
    reached: an override of ``epochs`` alone is refused in one line naming both, not run silently."""
    with pytest.raises(ConfigError, match=r"^profile 'embedded': student_training.recipe.milestones \[40, 53\] are not all "
                                          r"below its 2 epochs; student_training.pid_epochs \[1, 10, 20, 40, 80\] go "
                                          r"beyond its 2 epochs: shorten or empty them too"):
        Profile.load("embedded", {"student_training.epochs": 2})
    with pytest.raises(ConfigError, match=r"teacher_training.recipe.milestones \[20, 30\] are not all below its 10"):
        Profile.load("quick", {"teacher_training.epochs": 10})
    shortened = Profile.load("embedded", {"student_training.epochs": 25, "student_training.recipe.milestones": [12],
                                          "student_training.pid_epochs": [1, 25]})
    assert shortened.config("digits", "trained", "vid", 0).pid_epochs == (1, 25)
    with pytest.raises(ConfigError, match=r"methods.rid with student_training.epochs 2: .* no student epoch"):
        Profile.load("embedded", {"student_training.epochs": 2, "student_training.recipe.milestones": [],
                                  "student_training.pid_epochs": []}).config("digits", "trained", "rid", 0)


def test_a_dataset_outside_the_grid_is_checked_when_it_is_asked_for():
    quick = Profile.load("quick")
    with pytest.raises(ConfigError, match=r"pid_epochs \[50, 100, 150, 200, 250, 300\] \(datasets.cifar100\) go beyond its 40"):
        quick.config("cifar100", "trained", "vid", 0)


def test_seeds_are_whole_numbers_of_at_least_zero():
    with pytest.raises(ConfigError, match=r"seeds.0: Input should be greater than or equal to 0 \(got -3\)"):
        Profile.load("embedded", {"seeds": [-3]})


def test_the_grid_has_each_run_once_and_baselines_are_shared():
    configs = Profile.load("embedded", {"seeds": [0, 1]}).grid()
    grid = EMBEDDED.spec.grid
    distilling = len(grid.datasets) * len(grid.teachers) * (len(grid.methods) - 1)
    assert len(configs) == 2 * (distilling + len(grid.datasets))
    assert len({c.key for c in configs}) == len(configs)


def test_the_noise_grid_varies_only_the_noisy_teachers_sigma():
    configs = Profile.load("embedded", {"seeds": [0], "noise_sweep.sigmas": [0.5, 2.0]}).noise_grid()
    sigmas = sorted((c.method, c.teacher.noise.sigma) for c in configs if c.teacher)
    assert sigmas == [("rid", 0.5), ("rid", 2.0), ("vid", 0.5), ("vid", 2.0)]
    assert [c.method for c in configs if c.teacher is None] == ["baseline"]


def test_every_shipped_profile_loads_and_resolves_its_grid():
    for name in profile_names():
        profile = Profile.load(name)
        assert profile.grid() and all(c.profile == name for c in profile.grid())


# Property: whatever the override, loading either works or raises one ConfigError line.

SECTIONS = ["seeds", "grid.datasets", "student_training.epochs", "student_training.recipe.lr",
            "student_training.recipe.batch_size", "student_training.recipe.milestones", "teacher_training.seed",
            "methods.rid.rounds", "methods.rid.filter_fraction", "methods.vid.variant", "methods.kd.temperature",
            "teachers.noisy.sigma", "pid.n_clusters", "pid.layers", "noise_sweep.sigmas", "datasets.mnist1d.samples_per_class"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 400), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=8), st.lists(st.integers(-3, 40), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
KEYS = st.one_of(st.sampled_from(SECTIONS), st.builds(lambda s, k: f"{s}.{k}", st.sampled_from(SECTIONS), st.text("abcxyz_", min_size=1, max_size=6)))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=3))
def test_any_override_loads_or_fails_with_one_config_error_line(overrides):
    try:
        Profile.load("embedded", overrides)
    except ConfigError as error:
        assert str(error).startswith(("profile 'embedded': ", "override ")) and "\n" not in str(error)


def test_the_weight_sweep_runs_each_weight_under_each_teacher_beside_the_baselines():
    profile = Profile.load("embedded", {"seeds": [0, 1], "weight_sweep": {"weights": {"vid": [1, 100], "rid": [10]}}})
    configs = profile.weight_grid()
    points = sorted((c.method, c.teacher_kind, dict(c.params).get("weight"), c.seed) for c in configs)
    assert len(configs) == len(points) == 2 + 3 * 2 * 2
    assert ("vid", "untrained", 100.0, 1) in points and ("rid", "trained", 10.0, 0) in points
    assert [p for p in points if p[0] == "baseline"] == [("baseline", "none", None, 0), ("baseline", "none", None, 1)]


def test_chosen_weights_replace_the_profiles_and_share_the_sweeps_runs():
    profile = Profile.load("embedded", {"weight_sweep": {"weights": {"vid": [1, 100]}}})
    chosen = grids.weighted(profile, {"vid": 100})
    assert dict(chosen.config("mnist1d", "noisy", "vid", 0).params)["weight"] == 100
    assert chosen.config("mnist1d", "trained", "vid", 2).key in {c.key for c in profile.weight_grid()}
    assert chosen.config("mnist1d", "trained", "rid", 0) == profile.config("mnist1d", "trained", "rid", 0)
    with pytest.raises(ConfigError, match="has no weight_sweep section"):
        Profile.load("paper").weight_grid()


def test_the_weight_sweep_runs_fewer_seeds_where_it_says_but_every_seed_at_the_weights_the_claims_use():
    profile = Profile.load("embedded", {"weight_sweep": {"weights": {"vid": [1, 100], "rid": [3, 10]}, "seeds": {"untrained": [0, 9]},
                                                         "paper": {"rid": 10}}})
    points = {(c.method, c.teacher_kind, dict(c.params).get("weight"), c.seed) for c in profile.weight_grid()}
    seeds = lambda method, teacher, weight: sorted(s for m, t, w, s in points if (m, t, w) == (method, teacher, weight))  # noqa: E731
    assert seeds("vid", "untrained", 1.0) == [0]  # seed 9 is not the profile's
    assert seeds("vid", "trained", 1.0) == [0, 1, 2, 3, 4]
    assert seeds("vid", "untrained", 100.0) == seeds("rid", "untrained", 3.0) == seeds("rid", "untrained", 10.0) == [0, 1, 2, 3, 4]
    assert grids.claim_weights(profile) == {"chosen": {"vid": 100.0, "rid": 3.0}, "paper's": {"vid": 100.0, "rid": 10.0}}


def test_a_variation_changes_only_the_runs_it_touches_and_keeps_its_seeds_to_the_profiles():
    profile = Profile.load("embedded", {"seeds": [0, 1]})
    variation = Variation(set={"methods.rid.head": "pooled"}, teachers=("untrained",), methods=("baseline", "rid"), seeds=(1, 7))
    runs = profile.runs(variation, variation.set)
    grid = {c.key for c in profile.grid()}
    assert [(c.method, c.seed) for c in runs] == [("baseline", 1), ("rid", 1)]
    assert runs[0].key in grid and runs[1].key not in grid and dict(runs[1].params)["head"] == "pooled"
    with pytest.raises(ConfigError, match="methods.rid.head"):
        profile.varied({"methods.rid.head": "round"})


def test_doubling_doubles_the_epochs_and_every_milestone_a_recipe_sets():
    profile = Profile.load("embedded", {"student_training.method_recipes.rid.milestones": [30]})
    doubled = profile.varied(grids.doubled(profile))
    for method, milestones in (("vid", (80, 106)), ("rid", (60,))):
        once, twice = profile.config("mnist1d", "trained", method, 0), doubled.config("mnist1d", "trained", method, 0)
        assert (twice.epochs, twice.recipe.milestones) == (2 * once.epochs, milestones)
        assert twice.recipe.filter_lr == once.recipe.filter_lr and twice.pid_epochs == once.pid_epochs
    assert doubled.teacher_training("mnist1d", 0) == profile.teacher_training("mnist1d", 0)
