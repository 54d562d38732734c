"""``few_shot``: K-way N-shot classification learned online by a local rule with an error signal.

The protocol of Shervani-Tabar & Rosenbaum 2023 (Nat. Commun. 14:1805, "Meta-learning
biologically plausible plasticity rules with random feedback pathways"; code:
NeuralDynamicsAndComputing/MetaLearning-Plasticity, ``main.py``), at the size of two CPU
cores: an episode draws ``ways`` classes (``[task] n_post``) and, per class, ``shots``
training and ``queries`` query samples; the network (``[network] kind = "rate_layers"``,
:mod:`discover.layers`) starts from fresh Glorot-uniform weights and fresh random feedback
weights (their ``weights_init``, applied to both pathways every episode) and sees the
``ways * shots`` training samples once, one per step, in random order, every synapse
running the rule. Meta-loss: the cross-entropy of the query samples after the episode
(their ``loss_meta``); objective: the query accuracy. Labels are the position of a class
among the episode's classes, so a rule cannot memorize classes.

Meta-training, validation, the probe of the rule's input normalization and distillation
draw episodes from ``train_classes``; verification and the classification table from
``test_classes`` only (:meth:`FewShot.evaluation_sample`): the table is on classes no
stage of meta-training has seen.

Data sets (no download): scikit-learn's bundled 8x8 digits (1797 images, 64 pixels scaled
to [0, 1]; Alpaydin & Kaynak 1998, UCI) and MNIST-1D (Greydanus & Kobak 2024, ICML; the
``mnist1d`` package generates its 5000 sequences of 40 samples locally from
``get_dataset_args()``'s defaults, seed 42).

Baselines on the same episodes, network and samples (:meth:`FewShot.classification`), each
learning rate the best of ``lr_points`` log-spaced values in ``lr_range`` on ``tune_episodes``
episodes of the training classes:

- ``backprop``: the pseudo-gradient rule ``-eta*e_post*x`` with symmetric feedback, which
  is SGD on each sample's cross-entropy; ``backprop_adam``: Adam (optax) on the same
  per-sample gradients;
- ``feedback_alignment``: ``-eta*e_post*x`` with the random feedback (Lillicrap et al. 2016);
- ``readout_only``: hidden layers frozen at their random weights, the delta rule on the readout;
- ``hebbian`` and ``oja``: hidden layers by ``eta*x*y`` / Oja's rule, the readout by the
  delta rule at ``readout_only``'s rate;
- ``neural`` and ``equation``: the meta-learned rule and the selected distilled equation.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ..config import ConfigError, TaskConfig
from ..registry import TASKS
from .base import Task

DATASETS = ("digits", "mnist1d")


@functools.lru_cache(maxsize=4)
def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X [n, d] float32, labels [n] int)`` of a built-in data set."""
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    if name == "mnist1d":
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError:
            raise ConfigError("[task] dataset = \"mnist1d\" needs the mnist1d package: pip install mnist1d") from None
        m = make_dataset(get_dataset_args())  # generated locally (no download), seed 42
        X = np.concatenate([m["x"], m["x_test"]]).astype(np.float32)
        return X, np.concatenate([m["y"], m["y_test"]]).astype(np.int64)
    raise ConfigError(f"[task] dataset = {name!r} is not a built-in data set; use one of {', '.join(DATASETS)}")


DIMS = {"digits": 64, "mnist1d": 40}  # input dimension of each data set
AUGMENTATIONS = {"negate": lambda X: -X, "reverse": lambda X: X[:, ::-1]}


def augmented(X: np.ndarray, augment) -> list[np.ndarray]:
    """``X`` under every composition of the named transformations, ``X`` itself first."""
    out = [X]
    for name in augment:
        out += [AUGMENTATIONS[name](v) for v in out]
    return out


@TASKS.register("few_shot")
@dataclass(frozen=True)
class FewShot(Task):
    @dataclass(frozen=True)
    class Config(TaskConfig):
        name: str = "few_shot"
        dataset: str = "digits"
        n_pre: int = 64
        n_post: int = 5  # ways: classes per episode
        shots: int = 10  # training samples per class, seen once each, one per step
        queries: int = 10  # query samples per class: the meta-loss and the accuracy
        steps: int = 50  # = n_post * shots
        record_every: int = 5
        train_classes: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
        test_classes: list[int] = field(default_factory=lambda: [5, 6, 7, 8, 9])
        # the baselines' learning rates: the best of lr_points log-spaced values in lr_range
        lr_range: list[float] = field(default_factory=lambda: [1e-3, 3.0])
        lr_points: int = 15
        tune_episodes: int = 64
        eval_seeds: int = 5  # the classification table: seeds of eval_episodes held-out episodes each
        eval_episodes: int = 100
        angle_episodes: int = 16  # episodes over which the angle with backprop's update is measured
        # new training classes made of old ones (Santoro et al. 2016, ICML: Omniglot rotated by 90, 180 and 270 degrees
        # as new classes): "negate" (-x), "reverse" (x in reverse order; digits: turned by 180 degrees) and
        # their compositions; held-out classes are never transformed
        augment: list[str] = field(default_factory=list)

        choices: ClassVar[dict[str, tuple]] = {"dataset": DATASETS}
        positive: ClassVar[tuple[str, ...]] = ("shots", "queries", "lr_points", "tune_episodes", "eval_seeds",
                                               "eval_episodes", "angle_episodes")

        def check(self, cfg):
            super().check(cfg)
            if cfg.network.kind != "rate_layers":
                raise ConfigError("task few_shot learns in a multi-layer network with an error signal: set "
                                  "[network] kind = \"rate_layers\"")
            if self.n_pre != DIMS[self.dataset]:
                raise ConfigError(f"[task] n_pre = {self.n_pre}, but {self.dataset} samples have {DIMS[self.dataset]} "
                                  f"values; set n_pre = {DIMS[self.dataset]}")
            if self.steps != self.n_post * self.shots:
                raise ConfigError(f"[task] steps = {self.steps}, but an episode shows n_post * shots = "
                                  f"{self.n_post * self.shots} samples, one per step; set steps = "
                                  f"{self.n_post * self.shots}")
            for key in ("train_classes", "test_classes"):
                classes = getattr(self, key)
                if len(set(classes)) < self.n_post or not all(0 <= c <= 9 for c in classes):
                    raise ConfigError(f"[task] {key} = {classes} must hold at least n_post = {self.n_post} "
                                      "different classes among 0-9")
            both = sorted(set(self.train_classes) & set(self.test_classes))
            if both:
                raise ConfigError(f"[task] classes {both} are in both train_classes and test_classes; held-out "
                                  "classes must not be meta-trained on")
            bad = [a for a in self.augment if a not in AUGMENTATIONS]
            if bad or len(set(self.augment)) < len(self.augment):
                raise ConfigError(f"[task] augment = {self.augment}: list each of {', '.join(AUGMENTATIONS)} at "
                                  "most once")
            lo, hi = self.lr_range
            if not 0 < lo < hi:
                raise ConfigError(f"[task] lr_range = {self.lr_range} must be [low, high] with 0 < low < high")

    name: ClassVar[str] = "few_shot"
    # a regression on the term pool's dw keeps its largest terms and loses held-out accuracy
    # (80 % -> 48 % at meta-seed 1 of configs/digits_few_shot.toml); its prunings keep the
    # learned coefficients
    prune_student: ClassVar[bool] = True

    @property
    def diverged_loss(self) -> float:
        """An episode whose weights diverged counts chance: the cross-entropy of a uniform guess."""
        return math.log(self.network.n_post)

    # -- episodes -------------------------------------------------------------------------------
    @cached_property
    def _data(self):
        X, labels = load_dataset(self.config.dataset)
        per = [np.flatnonzero(labels == c) for c in range(10)]
        need = self.config.shots + self.config.queries
        n = min(len(p) for p in per)
        if n < need:
            raise ConfigError(f"[task] shots + queries = {need} is more than the {n} samples of the smallest "
                              f"{self.config.dataset} class; lower them")
        index = np.stack([p[:n] for p in per])
        variants = augmented(X, self.config.augment)
        # variant v of class c is class 10 * v + c, its samples at v * len(X) + the original's
        index = np.concatenate([index + v * len(X) for v in range(len(variants))])
        return jnp.asarray(np.concatenate(variants)), jnp.asarray(index)

    @property
    def train_classes(self) -> list[int]:
        """The training classes and, with ``augment``, their transformed copies (class ids 10 v + c)."""
        n = len(augmented(np.zeros((1, 1)), self.config.augment))
        return [10 * v + c for v in range(n) for c in self.config.train_classes]

    def episodes_of(self, key, n, classes):
        """``n`` episodes whose classes are drawn from ``classes``."""
        cls = jnp.asarray(np.asarray(classes, np.int32))
        return jax.vmap(lambda k: self._episode(k, cls))(jax.random.split(key, n))

    def _episode(self, key, classes):
        c, net = self.config, self.network
        X, index = self._data
        k_cls, k_pick, k_order, k_w, k_b = jax.random.split(key, 5)
        ways = net.n_post
        chosen = jax.random.permutation(k_cls, classes)[:ways]
        picks = jax.vmap(lambda k: jax.random.permutation(k, index.shape[1])[:c.shots + c.queries])(
            jax.random.split(k_pick, ways))
        idx = index[chosen[:, None], picks]  # [ways, shots + queries]
        order = jax.random.permutation(k_order, ways * c.shots)
        labels = jnp.repeat(jnp.arange(ways), c.shots)[order]
        return {"x": X[idx[:, :c.shots].reshape(-1)][order], "target": jax.nn.one_hot(labels, ways),
                "W0": net.glorot(k_w), "B0": net.glorot(k_b),
                "x_query": X[idx[:, c.shots:].reshape(-1)], "y_query": jnp.repeat(jnp.arange(ways), c.queries)}

    def sample(self, key, n):
        """Episodes of the training classes (meta-training, validation, probe, distillation)."""
        return self.episodes_of(key, n, self.train_classes)

    def evaluation_sample(self, key, n):
        """Episodes of the held-out classes (verification and the classification table)."""
        return self.episodes_of(key, n, self.config.test_classes)

    def initial_state(self, episode):
        return self.network.init_state(episode["W0"], episode["B0"])

    # -- loss and score -------------------------------------------------------------------------
    def query_logits(self, W, episode):
        return self.network.logits(W, episode["x_query"])

    def loss(self, rollout, episode):
        logits = self.query_logits(rollout.final["W"], episode)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, episode["y_query"][:, None], axis=1))

    def accuracy(self, W, episode):
        return jnp.mean(jnp.argmax(self.query_logits(W, episode), -1) == episode["y_query"])

    def score(self, rollout, episode):
        return self.accuracy(rollout.final["W"], episode)

    # -- baselines ------------------------------------------------------------------------------
    @cached_property
    def _variants(self) -> dict:
        return {}

    @cached_property
    def _compiled(self) -> dict:
        return {}

    def compiled(self, fn, *static):
        """``fn(self, *static, ...)`` jitted once per task object and static arguments (a
        task's config holds lists, so the task itself cannot be a static argument)."""
        key = (fn.__name__, *static)
        if key not in self._compiled:
            self._compiled[key] = jax.jit(functools.partial(fn, self, *static))
        return self._compiled[key]

    def with_feedback(self, feedback: str) -> "FewShot":
        """This task on the same network with ``feedback = "random"`` or ``"symmetric"``."""
        if self.network.feedback == feedback:
            return self
        if feedback not in self._variants:
            self._variants[feedback] = dataclasses.replace(
                self, network=dataclasses.replace(self.network, feedback=feedback))
        return self._variants[feedback]

    @cached_property
    def lr_grid(self) -> np.ndarray:
        lo, hi = self.config.lr_range
        return np.geomspace(lo, hi, self.config.lr_points)

    def mean_accuracy(self, rule, params, episodes) -> float:
        return float(np.mean(self.compiled(_scores, rule)(params, episodes)))

    def _tune(self, rule, name: str, episodes) -> float:
        """The grid's best value of ``rule``'s parameter ``name`` by mean query accuracy."""
        base = rule.init(jax.random.key(0))
        accs = []
        for lr in self.lr_grid:
            p = {**base, "core": {**base["core"], name: jnp.asarray(lr, jnp.float32)}}
            accs.append(self.mean_accuracy(rule, p, episodes))
        return float(self.lr_grid[int(np.argmax(accs))])

    @cached_property
    def tuned(self) -> dict[str, float]:
        """Each baseline's learning rate, tuned on episodes of the training classes."""
        from ..rules import RuleSet, SymbolicRule

        # the training classes as they are: augmented classes are the meta-learner's device, and tuning on
        # them costs feedback alignment 1.5 points on MNIST-1D's held-out classes (30.8 % -> 29.3 %)
        eps = self.episodes_of(jax.random.key(40_000), self.config.tune_episodes, self.config.train_classes)
        pg = SymbolicRule.from_string("-eta*e_post*x", {"eta": 0.1}, label="pseudo_gradient")
        out = {"backprop": self.with_feedback("symmetric")._tune(pg, "eta", eps),
               "feedback_alignment": self.with_feedback("random")._tune(pg, "eta", eps)}
        frozen = SymbolicRule.from_string("0*w", label="none")
        readout = RuleSet.of({"hidden": frozen, "readout": pg}, label="readout_only")
        out["readout_only"] = self._tune_part(readout, "readout", "eta", eps)
        out["backprop_adam"] = self._tune_adam(eps)
        for name, eq in (("hebbian", "eta*x*y"), ("oja", "eta*(x*y - y**2*w)")):
            rs = RuleSet.of({"hidden": SymbolicRule.from_string(eq, {"eta": 0.01}, label=name),
                             "readout": SymbolicRule.from_string("-eta*e_post*x", {"eta": out["readout_only"]},
                                                                 label="pseudo_gradient")}, label=name)
            out[name] = self._tune_part(rs, "hidden", "eta", eps)
        return out

    def _tune_part(self, rs, part: str, name: str, episodes) -> float:
        base = rs.init(jax.random.key(0))
        accs = []
        for lr in self.lr_grid:
            core = {**base["core"], part: {**base["core"][part], name: jnp.asarray(lr, jnp.float32)}}
            accs.append(self.mean_accuracy(rs, {**base, "core": core}, episodes))
        return float(self.lr_grid[int(np.argmax(accs))])

    def _tune_adam(self, episodes) -> float:
        grid = self.lr_grid / 30.0  # Adam's steps are ~lr per weight: a grid scaled to its usual rates
        accs = [float(np.mean(self.adam_scores(lr, episodes))) for lr in grid]
        return float(grid[int(np.argmax(accs))])

    def adam_scores(self, lr: float, episodes) -> np.ndarray:
        """Query accuracy per episode after online Adam (optax) on each sample's cross-entropy."""
        return np.asarray(self.compiled(_adam_scores)(jnp.asarray(lr, jnp.float32), episodes))

    def baselines(self) -> dict:
        """``{method: (task, rule, params)}`` of the rule-based baselines at their tuned rates."""
        from ..rules import RuleSet, SymbolicRule

        lr = self.tuned
        pg = functools.partial(SymbolicRule.from_string, "-eta*e_post*x", label="pseudo_gradient")
        none = SymbolicRule.from_string("0*w", label="none")
        out = {"backprop": (self.with_feedback("symmetric"), pg({"eta": lr["backprop"]})),
               "feedback_alignment": (self.with_feedback("random"), pg({"eta": lr["feedback_alignment"]})),
               "readout_only": (self, RuleSet.of({"hidden": none, "readout": pg({"eta": lr["readout_only"]})},
                                                 label="readout_only"))}
        for name, eq in (("hebbian", "eta*x*y"), ("oja", "eta*(x*y - y**2*w)")):
            out[name] = (self, RuleSet.of({"hidden": SymbolicRule.from_string(eq, {"eta": lr[name]}, label=name),
                                           "readout": pg({"eta": lr["readout_only"]})}, label=name))
        return {k: (t, r, r.init(jax.random.key(0))) for k, (t, r) in out.items()}

    def references(self):
        return {k: r for k, (t, r, _) in self.baselines().items() if k != "backprop"}

    def reference_kind(self):
        return "baseline"

    # -- what verification adds -------------------------------------------------------------
    def behaviour(self, rules: dict, episodes):
        """Query accuracy after every ``record_every`` training samples (a learning curve)."""
        rows = []
        for name, (rule, params) in rules.items():
            Ws = jax.vmap(lambda e, r=rule, p=params: self.simulate(r, p, e).weights)(episodes)  # [E, blocks, 1, N]
            acc = jax.vmap(lambda W, e: jax.vmap(lambda w: self.accuracy(w, e))(W))(Ws, episodes)
            acc = np.asarray(acc)
            for b in range(acc.shape[1]):
                rows.append((name, "query_accuracy", (b + 1) * self.record_every, acc[:, b]))
        return rows

    def classification(self, rules: dict):
        """``classification.csv``: every method's query accuracy on held-out classes, mean
        and 95 % t-interval over ``eval_seeds`` seeds (each the mean over ``eval_episodes``
        episodes), its learning rate where tuned, and its update's angle with backprop's."""
        import pandas as pd
        from scipy import stats

        c = self.config
        seeds = [self.evaluation_sample(jax.random.key(30_000 + s), c.eval_episodes) for s in range(c.eval_seeds)]
        probe = self.evaluation_sample(jax.random.key(31_000), c.angle_episodes)
        methods = {}
        names = {"neural": "neural", "selected": "equation"}
        for k, (rule, params) in rules.items():
            if k in names:
                methods[names[k]] = (self, rule, params, None)
        for k, (task, rule, params) in self.baselines().items():
            methods[k] = (task, rule, params, self.tuned[k])
        rows = []
        for name, (task, rule, params, lr) in methods.items():
            accs = np.array([task.mean_accuracy(rule, params, eps) for eps in seeds])
            ang, ang_h = task.angle_to_backprop(rule, params, probe)
            rows.append(_row(name, accs, stats, lr, ang, ang_h, _equation(rule, params)))
        accs = np.array([float(np.mean(self.adam_scores(self.tuned["backprop_adam"], eps))) for eps in seeds])
        rows.append(_row("backprop_adam", accs, stats, self.tuned["backprop_adam"], np.nan, np.nan, "Adam (optax)"))
        order = ["neural", "equation", "backprop", "backprop_adam", "feedback_alignment", "readout_only", "hebbian",
                 "oja"]
        rows.sort(key=lambda r: order.index(r["method"]))
        return pd.DataFrame(rows)

    def angle_to_backprop(self, rule, params, episodes) -> tuple[float, float]:
        """Mean angle (degrees) between the update a rule makes at each training sample and
        backprop's (minus the sample's cross-entropy gradient at the same weights), over all
        synapses and over the hidden layers' alone (the readout's pseudo-gradient is exact)."""
        cos, cos_h = self.compiled(_angles, rule)(params, episodes)
        deg = lambda v: float(np.degrees(np.arccos(np.clip(np.nanmean(np.asarray(v)), -1, 1))))  # noqa: E731
        return deg(cos), deg(cos_h)


def _equation(rule, params) -> str:
    """A rule's equation at its parameters (a learned term pool's, not its starting values);
    blank for an MLP."""
    from distill.simplify import format_equation
    from distill.verify import rule_text

    from ..rules import PolynomialRule, SymbolicRule

    if isinstance(rule, SymbolicRule):
        return format_equation(rule.bound_expr(params))
    if isinstance(rule, PolynomialRule):
        return format_equation(rule.as_expr(params))
    return rule_text(rule)


def _row(name, accs, stats, lr, ang, ang_h, equation):
    n = len(accs)
    mean = float(accs.mean())
    half = float(stats.t.ppf(0.975, n - 1) * accs.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return {"method": name, "accuracy_mean": mean, "ci_low": mean - half, "ci_high": mean + half, "seeds": n,
            "learning_rate": np.nan if lr is None else lr, "angle_to_backprop_deg": ang,
            "angle_hidden_deg": ang_h, "equation": equation}


def _scores(task, rule, params, episodes):
    return jax.vmap(lambda e: task.score(task.simulate(rule, params, e), e))(episodes)


def cosine(a, b):
    """Cosine of the angle between ``a`` and ``b`` along the last axis; NaN where either is 0.
    Each is scaled by its largest entry first: a saturated softmax leaves gradients of ~1e-25,
    whose squares underflow in float32 (a zero norm gave cosines of -5e6)."""
    a = a / jnp.max(jnp.abs(a), -1, keepdims=True)
    b = b / jnp.max(jnp.abs(b), -1, keepdims=True)
    return jnp.sum(a * b, -1) / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1))


def _angles(task, rule, params, episodes):
    net = task.network
    task = dataclasses.replace(task, config=dataclasses.replace(task.config, record_every=1))
    hidden = 1.0 - jnp.asarray(net.readout_mask[0])

    def one(e):
        Ws = task.simulate(rule, params, e).weights[:, 0]  # [T, N]: after each step
        before = jnp.concatenate([e["W0"], Ws[:-1]], axis=0)
        dw = Ws - before

        def grad(W, x, t):
            return jax.grad(lambda w: -jnp.sum(t * jax.nn.log_softmax(net.logits(w[None], x))))(W)

        g = -jax.vmap(grad)(before, e["x"], e["target"])

        return cosine(dw, g), cosine(dw * hidden, g * hidden)

    c, ch = jax.vmap(one)(episodes)
    return jnp.nanmean(c), jnp.nanmean(ch)


def _adam_scores(task, lr, episodes):
    import optax

    net = task.network
    opt = optax.adam(lr)

    def one(e):
        def ce(w, x, t):
            return -jnp.sum(t * jax.nn.log_softmax(net.logits(w, x)))

        def body(carry, xt):
            W, s = carry
            g = jax.grad(ce)(W, *xt)
            u, s = opt.update(g, s, W)
            return (W + u, s), None

        (W, _), _ = jax.lax.scan(body, (e["W0"], opt.init(e["W0"])), (e["x"], e["target"]))
        return task.accuracy(W, e)

    return jax.vmap(one)(episodes)


__all__ = ["FewShot", "load_dataset", "DATASETS"]
