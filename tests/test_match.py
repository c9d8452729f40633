"""`roon where`: planted circuits are found exactly, absent ones are not verified.

Every library circuit is planted into random ReLU networks — extra neurons, shuffled
hidden units, positive per-neuron rescaling, extra inputs with zero or small weight, at
several layer offsets — and ``where`` must return exactly the planted embedding and its
images under the circuit's automorphisms (computed here by brute force over permutations,
independently of the matcher), verified.
"""

from __future__ import annotations

import zlib
from itertools import permutations, product
from pathlib import Path

import numpy as np
import pytest

from roon import MLP, Layer
from roon.errors import CatalogueError, InvalidArgumentError
from roon.ingest.loaders.circuit import list_circuits, load_circuit
from roon.ingest.pipeline import ingest_model
from roon.kernels.restricted import TOP_INPUTS
from roon.query.match import where
from roon.store import layout, open_catalogue
from roon.zoo.plant import plant

pytestmark = pytest.mark.integration

CIRCUITS = [c.name for c in list_circuits()]


def automorphisms(mlp: MLP) -> list[tuple[tuple[int, ...], list[tuple[int, ...]]]]:
    """Every (input permutation, per-layer neuron permutations) leaving the weights equal."""
    found = []
    widths = mlp.widths
    choices = [list(permutations(range(w))) for w in widths[:-1]]  # inputs and hidden layers
    for perms in product(*choices):
        ok = True
        for j, layer in enumerate(mlp.layers):
            rows = perms[j + 1] if j + 1 < len(perms) else tuple(range(layer.width))
            w = layer.weight[np.ix_(rows, perms[j])]
            if not (
                np.array_equal(w, layer.weight)
                and np.array_equal(layer.bias[list(rows)], layer.bias)
            ):
                ok = False
                break
        if ok:
            last = tuple(range(widths[-1]))
            found.append((perms[0], [*perms[1:], last]))
    return found


def expected(circuit: MLP, psi: list[int], maps: list[list[int]]) -> set:
    out = set()
    for perm_in, perms in automorphisms(circuit):
        out.add(
            (
                tuple((i, psi[perm_in[i]]) for i in range(len(psi))),
                tuple(
                    tuple((p, maps[j][perms[j][p]]) for p in range(len(maps[j])))
                    for j in range(len(maps))
                ),
            )
        )
    return out


def brute_deviation(pattern: MLP, target: MLP, match, domain: str) -> float:
    """The deviation of an embedding, recomputed from scratch on the whole domain cube."""
    digits = [0.0, 1.0] if domain == "binary" else [-1.0, 0.0, 1.0]
    x = np.array(list(product(digits, repeat=pattern.input_width)))
    p = pattern.forward(x)
    h = np.zeros((len(x), target.layers[match.layer_offset].fan_in))
    h[:, [t for _, t in match.input_map]] = x
    for j, layer_map in enumerate(match.maps):
        layer = target.layers[match.layer_offset + j]
        rows = [t for _, t in layer_map]
        keep = np.zeros_like(h)
        cols = [t for _, t in (match.input_map if j == 0 else match.maps[j - 1])]
        keep[:, cols] = h[:, cols]
        z = keep @ layer.weight.T.astype(float) + layer.bias.astype(float)
        out = np.maximum(z, 0) if layer.activation == "relu" else z
        h = np.zeros_like(out)
        h[:, rows] = out[:, rows]
    t = h[:, [t for _, t in match.maps[-1]]]
    worst = 0.0
    for o in range(p.shape[1]):
        c = (p[:, o] @ t[:, o]) / (p[:, o] @ p[:, o])
        worst = max(worst, np.abs(c * p[:, o] - t[:, o]).max() / np.abs(c * p[:, o]).max())
    return worst


def found(result, model_id: str) -> set:
    return {
        (tuple(map(tuple, m.input_map)), tuple(tuple(map(tuple, layer)) for layer in m.maps))
        for m in result.verified
        if m.model_id == model_id
    }


def _catalogue(tmp_path: Path, models: list[MLP], domain: str) -> Path:
    root = open_catalogue(tmp_path / "cat", create=True)
    for m in models:
        ingest_model(m, root, input_domain=domain, backend="ref")
    return root


def test_automorphisms_of_the_library_are_what_the_circuits_say():
    assert len(automorphisms(load_circuit("xor").mlp)) == 2  # swap inputs and hidden units
    assert len(automorphisms(load_circuit("maj3").mlp)) == 6
    assert len(automorphisms(load_circuit("min").mlp)) == 1
    assert len(automorphisms(load_circuit("greater").mlp)) == 1


@pytest.mark.parametrize("name", CIRCUITS)
def test_every_library_circuit_planted_is_found_exactly(tmp_path: Path, name: str):
    circuit = load_circuit(name)
    domain = circuit.input_domain
    # signed circuits only make sense on the model inputs; binary ones also deeper down,
    # where they see ReLU outputs
    offsets = [0] if domain == "signed" else [0, 1]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    planted = []
    for offset in offsets:
        for extra in ("zero", "small"):
            mlp, (psi, maps) = plant(circuit.mlp, offset=offset, rng=rng, extra=extra)
            mlp = mlp.replace(name=f"{name}-{offset}-{extra}")
            planted.append((mlp, offset, extra, psi, maps))
    root = _catalogue(tmp_path, [p[0] for p in planted], domain)
    loose = where(name, root)
    strict = where(name, root, strict=True)
    for mlp, offset, extra, psi, maps in planted:
        want = expected(circuit.mlp, psi, maps)
        got = found(loose, mlp.id)
        if extra == "zero":
            assert got == want, (name, offset, extra)
            assert {m.layer_offset for m in loose.verified if m.model_id == mlp.id} == {offset}
        else:
            # small weights from other inputs can make further true embeddings (e.g.
            # relu(x_a + 0.01·x_c − 1) is 0.01·AND(x_a, x_c) on the cube): each must check
            # out against an independent forward pass of the restricted sub-network
            assert want <= got, (name, offset, extra)
            for m in loose.verified:
                if m.model_id == mlp.id:
                    assert brute_deviation(circuit.mlp, mlp, m, domain) < 0.1
        # --strict: only the plants whose neurons take nothing from unmapped inputs
        assert found(strict, mlp.id) == (want if extra == "zero" else set()), (name, offset, extra)
    assert loose.models_found == len(planted)
    # complete unless some layer is wider than the restricted index sees (its note says so)
    wide = any(la.fan_in > TOP_INPUTS for p in planted for la in p[0].layers)
    partial = any("strongest inputs only" in n for n in loose.notes)
    assert loose.complete == (not partial) and (partial <= wide), loose.notes
    exact_plants = {mlp.id for mlp, _, extra, _, _ in planted if extra == "zero"}
    assert all(m.deviation < 1e-9 for m in loose.verified if m.model_id in exact_plants)


def test_a_plant_in_a_wide_layer_is_found_through_the_restricted_index(tmp_path: Path):
    circuit = load_circuit("and").mlp
    rng = np.random.default_rng(7)
    mlp, (psi, maps) = plant(circuit, offset=0, rng=rng, inputs=100, width=20)
    root = _catalogue(tmp_path, [mlp], "binary")
    assert found(where("and", root), mlp.id) == expected(circuit, psi, maps)


def test_a_perturbed_copy_is_found_and_verified(tmp_path: Path):
    rng = np.random.default_rng(3)
    models = []
    for name in ("xor", "min", "abs", "maj3"):
        c = load_circuit(name).mlp
        layers = [
            Layer(la.weight * (1 + rng.uniform(-1e-3, 1e-3, la.weight.shape)),
                  la.bias + rng.uniform(-1e-3, 1e-3, la.bias.shape), la.activation)
            for la in c.layers
        ]  # fmt: skip
        models.append((name, MLP(layers, name=f"{name}-noisy")))
    for name, model in models:
        domain = load_circuit(name).input_domain
        root = _catalogue(tmp_path / name, [model], domain)
        result = where(name, root)
        assert result.models_found == 1, name
        assert all(m.deviation < 0.01 for m in result.verified)


def test_circuits_trained_from_scratch_are_found_and_verified(tmp_path: Path):
    # PyTorch's default initialisation, five seeds: a run that converges has the circuit
    # (found and verified), a run stuck at a dead ReLU has not (never verified)
    torch = pytest.importorskip("torch")
    from roon import ingest_models

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2048, 2, generator=gen) * 2 - 1
    cases = {
        "greater": (lambda: torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.ReLU()),
                    x, torch.relu(x[:, :1] - x[:, 1:])),
        "abs": (lambda: torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.ReLU(),
                                            torch.nn.Linear(2, 1)),
                x[:, :1], x[:, :1].abs()),
    }  # fmt: skip
    for name, (make, inputs, y) in cases.items():
        outcomes = set()
        for seed in range(5):
            torch.manual_seed(seed)
            net = make()
            opt = torch.optim.Adam(net.parameters(), lr=1e-2)
            for _ in range(600):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(net(inputs), y)
                loss.backward()
                opt.step()
            if 1e-4 <= loss.item() <= 1e-2:
                continue  # neither converged nor clearly stuck: no claim either way
            converged = loss.item() < 1e-4
            outcomes.add(converged)
            root = tmp_path / f"{name}-{seed}"
            [res] = ingest_models([net], root, input_domain="signed", backend="ref")
            assert res.status == "ingested"
            result = where(name, root)
            assert (result.models_found == 1) == converged, (name, seed, loss.item())
        assert True in outcomes, name  # at least one seed converged


def test_what_fails_the_functional_check_is_reported_but_never_verified(tmp_path: Path):
    # relu(x1 + 0.2·x2 - 0.5): off at (0,0), on at (1,1) — AND's cared-for inputs — so it
    # passes the structural and positional checks (AND's ties are don't-cares), but its
    # values are nearly x1's, not x1 AND x2's
    m = MLP([Layer(np.array([[1.0, 0.2]]), np.array([-0.5]), "relu")], name="x1")
    root = _catalogue(tmp_path, [m], "binary")
    result = where("and", root)
    assert result.matches and not result.verified
    assert all(not m.verified and m.deviation > 0.1 for m in result.matches)


def test_identity_and_negation_are_told_apart(tmp_path: Path):
    identity, negation = load_circuit("identity").mlp, load_circuit("negation").mlp
    root = _catalogue(
        tmp_path, [identity.replace(name="id"), negation.replace(name="neg")], "signed"
    )
    assert {m.model for m in where("identity", root).verified} == {"id"}
    assert {m.model for m in where("negation", root).verified} == {"neg"}


def test_which_input_is_greater_is_in_the_input_map(tmp_path: Path):
    # relu(x2 - x1): greater is found with pattern input 0 (the larger one) on input 1
    m = MLP([Layer(np.array([[-1.0, 1.0]]), np.zeros(1), "relu")], name="x2_gt_x1")
    root = _catalogue(tmp_path, [m], "signed")
    [match] = where("greater", root).verified
    assert match.input_map == [[0, 1], [1, 0]]


def test_a_sub_layer_of_the_last_layer_is_found_in_its_model(tmp_path: Path):
    from fixtures import random_mlp

    model = random_mlp((5, 6, 4), seed=11)
    last = model.layers[-1]
    rows = [3, 1]
    pattern = MLP([Layer(last.weight[rows], last.bias[rows], last.activation)], name="sub")
    path = tmp_path / "sub.safetensors"
    from roon.ingest.loaders import save_safetensors

    save_safetensors(pattern, path)
    root = _catalogue(tmp_path, [model], "binary")
    result = where(str(path), root)
    assert any(m.maps[0] == [[0, 3], [1, 1]] and m.layer_offset == 1 for m in result.verified)


def test_a_pattern_deeper_than_the_target_gives_no_match_not_an_error(tmp_path: Path):
    from fixtures import random_mlp

    model = random_mlp((2, 3, 2), seed=2)
    root = _catalogue(tmp_path, [model], "binary")
    # xor's first layer (2 inputs, 2 relu) would fit model layer 1 (3 → 2), its second layer
    # would run past the last layer: the seed raised IndexError here
    result = where("xor", root)
    assert all(m.layer_offset == 0 for m in result.matches)
    with pytest.raises(InvalidArgumentError, match="deeper or wider than every model"):
        where("maj3", _catalogue(tmp_path / "thin", [random_mlp((2, 2), seed=1)], "binary"))


def test_two_copies_of_one_pattern_neuron_need_two_target_neurons(tmp_path: Path):
    and_row = (np.array([[1.0, 1.0]]), np.array([-1.0]))
    twice = MLP(
        [Layer(np.vstack([and_row[0]] * 2), np.concatenate([and_row[1]] * 2), "relu")],
        name="two_ands",
    )
    once = MLP(
        [Layer(np.array([[1.0, 1.0], [0.1, -0.2]]), np.array([-1.0, 0.9]), "relu")], name="one"
    )
    double = MLP(
        [Layer(np.array([[1.0, 1.0], [2.0, 2.0]]), np.array([-1.0, -2.0]), "relu")], name="two"
    )
    root = _catalogue(tmp_path, [once, double], "binary")
    pattern = tmp_path / "twice.safetensors"
    from roon.ingest.loaders import save_safetensors

    save_safetensors(twice, pattern)
    result = where(str(pattern), root)
    assert {m.model for m in result.verified} == {"two"}
    assert all(len({t for _, t in m.maps[0]}) == 2 for m in result.matches)  # injective


def test_bad_input_is_one_line(tmp_path: Path):
    from fixtures import random_mlp

    root = _catalogue(tmp_path, [random_mlp((3, 4, 2), seed=1)], "binary")
    with pytest.raises(InvalidArgumentError, match=r"unknown circuit 'nope'.*and, greater"):
        where("nope", root)
    with pytest.raises(CatalogueError, match="no roon catalogue"):
        where("and", tmp_path / "missing")
    with pytest.raises(InvalidArgumentError, match="limit"):
        where("and", root, limit=0)
    # a catalogue written before the restricted index: say to reindex
    model_id = layout.committed_models(root)[0]
    layout.table_path(root, model_id, "restricted").unlink()
    with pytest.raises(CatalogueError, match="roon reindex"):
        where("and", root)


@pytest.mark.parametrize("spread", [0, 40, 300])
def test_exact_affine_equals_fractions(spread):
    from fractions import Fraction

    from roon.query.match.verify import _affine

    rng = np.random.default_rng(spread)
    w = rng.normal(size=(4, 3)) * 2.0 ** rng.integers(-spread, 1, size=(4, 3))
    b = rng.normal(size=4) * 2.0 ** rng.integers(-spread, 1, size=4)
    x = rng.integers(-3, 4, size=(3, 6)).astype(np.int64)
    z, e = _affine(w, b, x, -2)  # inputs are x · 2^-2
    for r in range(4):
        for c in range(6):
            exact = sum(Fraction(w[r, i]) * Fraction(int(x[i, c]), 4) for i in range(3))
            exact += Fraction(b[r])
            assert Fraction(int(z[r, c])) * Fraction(2) ** e == exact


def test_normalize_compares_normalized_copies(tmp_path: Path):
    from roon import ingest_models
    from roon.ingest.loaders import save_safetensors

    rng = np.random.default_rng(21)
    files = []
    for i in range(3):
        mlp, _ = plant(load_circuit("xor").mlp, offset=0, rng=rng)
        files.append(tmp_path / f"p{i}.safetensors")
        save_safetensors(mlp.replace(name=f"p{i}"), files[-1])
    root = tmp_path / "cat"
    ingest_models(files[:2], root, normalize=["exact"], backend="ref")
    ingest_models(files[2:], root, backend="ref")  # no normalized copy
    result = where("xor", root, normalize="exact")
    assert result.models == 2 and result.models_found == 2
    assert any("1 models have no copy normalized" in n for n in result.notes)
    # the embeddings are in the normalized copies, not in the models as ingested
    from roon.store.read import model_names

    names = model_names(open_catalogue(root))
    plain = {m.model_id for m in where("xor", root).verified}
    assert {m.model_id for m in result.verified}.isdisjoint(plain)
    # ... namely in the copies the exact rules make of the two normalized models
    from roon.ingest.loaders import load_model
    from roon.ingest.normalize import normalize

    copies = {normalize(load_model(f), "exact")[0].id for f in files[:2]}
    assert {m.model_id for m in result.verified} == copies and copies <= set(names)


def test_box_domain_models_are_skipped_with_a_note(tmp_path: Path):
    from roon import ingest_models
    from roon.ingest.loaders import save_safetensors

    rng = np.random.default_rng(4)
    box, plain = tmp_path / "box.safetensors", tmp_path / "plain.safetensors"
    for path in (box, plain):
        mlp, _ = plant(load_circuit("xor").mlp, offset=0, rng=rng)
        save_safetensors(mlp.replace(name=path.stem), path)
    root = tmp_path / "cat"
    ingest_models([box], root, input_domain="box", input_bounds=(0.0, 1.0), backend="ref")
    ingest_models([plain], root, backend="ref")
    result = where("xor", root)
    assert {m.model for m in result.verified} == {"plain"}
    assert any("box-domain layers were not searched" in n for n in result.notes)


def _weak_and(fan_in: int) -> MLP:
    """relu(x0 + x1 − 1 + 5·(x2 + … )): AND on inputs 0, 1 when the others are 0, through
    the neuron's two weakest inputs."""
    w = np.array([[1.0, 1.0] + [5.0] * (fan_in - 2)])
    return MLP([Layer(w, np.array([-1.0]), "relu")], name=f"weak{fan_in}")


def test_an_embedding_the_restricted_index_cannot_see_makes_the_result_incomplete(
    tmp_path: Path,
):
    # fan-in 8: every input is among the 8 strongest, the index sees the AND on (0, 1)
    seen = where("and", _catalogue(tmp_path / "8", [_weak_and(TOP_INPUTS)], "binary"))
    # (AND is symmetric: inputs 0, 1 either way round; the other pairs fail the
    # functional check, since AND's ties are don't-cares of the positional one)
    assert sorted(m.input_map for m in seen.verified) == [[[0, 0], [1, 1]], [[0, 1], [1, 0]]]
    assert seen.complete and not any("strongest" in n for n in seen.notes)
    # fan-in 12: inputs 0 and 1 are the weakest; the search cannot find it and says so
    unseen = where("and", _catalogue(tmp_path / "12", [_weak_and(12)], "binary"))
    assert not unseen.verified and not unseen.complete
    assert any("1 placements are in layers of more than 8 inputs" in n for n in unseen.notes)


def test_limit_counts_verified_embeddings(tmp_path: Path):
    # two ANDs per model (4 verified embeddings: AND is symmetric) beside an x1-like
    # neuron that passes the positional check but fails the functional one (2 more)
    models = [
        MLP([Layer(np.array([[1.0, w], [1.0, 1.0], [1.0, 1.0]]),
                   np.array([-0.5, -1.0, -1.5]), "relu")], name=f"m{w}")
        for w in (0.2, 0.3)
    ]  # fmt: skip
    root = _catalogue(tmp_path, models, "binary")
    every = where("and", root)
    assert len(every.verified) == 8 and len(every.matches) == 12 and every.complete
    for n in (1, 5, 8, 9):
        some = where("and", root, limit=n)
        assert len(some.verified) == min(n, 8)
        assert some.complete == (n > 8)
        assert any("stopped after" in note for note in some.notes) == (n <= 8)
        key = lambda m: (m.model, str(m.maps), str(m.input_map))  # noqa: E731
        assert {key(m) for m in some.verified} <= {key(m) for m in every.verified}


def test_a_circuit_that_is_silent_on_a_domain_is_not_judged_there(tmp_path: Path):
    from fixtures import random_mlp

    # relu(-x) is 0 on every binary input: every dead neuron would "match" it
    root = _catalogue(tmp_path, [random_mlp((3, 6, 2), seed=5)], "binary")
    result = where("negative", root)
    assert not result.matches
    assert any("output 0 is 0 on every binary input" in n for n in result.notes)
    signed = _catalogue(tmp_path / "signed", [load_circuit("negative").mlp], "signed")
    assert where("negative", signed).models_found == 1


def test_inexact_checks_are_flagged(tmp_path: Path):
    from roon.ingest.loaders import save_safetensors

    # a tanh layer is judged in float64: found, but its rows say so
    tanh = MLP([Layer(np.array([[1.0, 1.0]]), np.array([-1.0]), "tanh")], name="tanh_and")
    path = tmp_path / "tanh.safetensors"
    save_safetensors(tanh, path)
    target = MLP([Layer(np.array([[2.0, 2.0]]), np.array([-2.0]), "tanh")], name="t")
    root = _catalogue(tmp_path, [target], "binary")
    result = where(str(path), root, save=True)
    assert result.matches and not any(m.exact for m in result.matches)
    assert any("not exact at 1 placements" in n for n in result.notes)
    # ... and so do the rows saved (a row an older roon saved reads as null)
    from roon.store import read_table

    saved = read_table(root, "matches").to_pylist()
    assert len(saved) == len(result.matches) and {r["exact"] for r in saved} == {False}
    # the library's relu circuits on a small cube: exact
    root = _catalogue(tmp_path / "and", [load_circuit("and").mlp], "binary")
    assert all(m.exact for m in where("and", root).matches)


def test_saving_twice_adds_nothing_and_says_so(tmp_path: Path):
    root = _catalogue(tmp_path, [load_circuit("and").mlp.replace(name="a")], "binary")
    first = where("and", root, save=True)
    assert first.saved == len(first.matches) == 2  # AND either way round
    assert where("and", root, save=True).saved == 0


def test_references_and_paths_are_read_as_the_user_meant(tmp_path: Path):
    root = _catalogue(tmp_path, [load_circuit("and").mlp.replace(name="a")], "binary")
    assert where("and", root, models="a").models == 1  # one string is one reference
    with pytest.raises(InvalidArgumentError, match=r"missing\.json: no such file"):
        where(str(tmp_path / "missing.json"), root)
    with pytest.raises(InvalidArgumentError, match="circuit 5"):
        where(5, root)  # type: ignore[arg-type]
