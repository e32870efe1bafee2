"""reviewlstm.adam against torch.optim.Adam: the same weights bit for bit, step after step."""

import subprocess
import sys

import pytest
import torch

from reviewlstm.adam import Adam
from reviewlstm.config import ModelConfig
from reviewlstm.models import build_model


def _model(head: str, frozen: bool) -> torch.nn.Module:
    torch.manual_seed(3)
    glove = torch.randn(40, 8).numpy() if frozen else None
    cfg = ModelConfig(embedding_dim=8, hidden_dim=8, head=head, length="variable",
                      embeddings="glove_frozen" if frozen else "learned")
    return build_model(cfg, 40, 5, glove)


def _loss(model, step: int) -> torch.Tensor:
    """A batch whose ids change every step (so the embedding's rows get sparse, uneven gradients)."""
    g = torch.Generator().manual_seed(step)
    torch.manual_seed(step)  # the same dropout draw for both models
    ids = torch.randint(1, 40, (16, 6), generator=g)
    lengths = torch.randint(1, 7, (16,), generator=g)
    out = model(ids, lengths)
    return (out**2).mean() if out.dim() == 1 or out.shape[-1] == 1 else torch.nn.functional.cross_entropy(
        out, torch.randint(0, 5, (16,), generator=g))


@pytest.mark.parametrize("head,frozen", [("classify", False), ("regress", False), ("classify", True)])
def test_steps_move_the_weights_as_torch_adam_does(head, frozen):
    ours, theirs = _model(head, frozen), _model(head, frozen)
    params = lambda m: [p for p in m.parameters() if p.requires_grad]  # noqa: E731
    opt_ours, opt_theirs = Adam(params(ours), lr=0.05), torch.optim.Adam(params(theirs), lr=0.05)
    for step in range(40):
        for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()  # torch's default sets the gradients to None, as ours does
            _loss(model, step).backward()
            if step % 7 == 3:  # a parameter without a gradient this step: skipped, its moments kept
                model.head.bias.grad = None
            opt.step()
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            assert torch.equal(a, b), f"{name} differs after step {step + 1}"


def test_a_reloaded_state_continues_the_same_steps():
    whole, resumed = _model("classify", False), _model("classify", False)
    opt_whole = Adam([p for p in whole.parameters()], lr=0.02)
    first = Adam([p for p in resumed.parameters()], lr=0.02)
    for step in range(5):
        for model, opt in ((whole, opt_whole), (resumed, first)):
            opt.zero_grad()
            _loss(model, step).backward()
            opt.step()
    state = first.state_dict()
    again = Adam([p for p in resumed.parameters()], lr=0.9)  # the saved lr wins
    again.load_state_dict(state)
    for step in range(5, 10):
        for model, opt in ((whole, opt_whole), (resumed, again)):
            opt.zero_grad()
            _loss(model, step).backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
    with pytest.raises(ValueError, match="optimizer state for"):
        Adam([whole.head.weight], lr=0.1).load_state_dict(state)


def test_training_does_not_import_torch_dynamo():
    """The reason this module exists: torch.optim's optimizers import torch._dynamo (2.4 s, 70 MB)."""
    code = ("import sys, numpy as np\n"
            "from reviewlstm.config import ModelConfig, Round\n"
            "from reviewlstm.encode import Split\n"
            "from reviewlstm.train import train_model\n"
            "s = Split(np.ones((20, 5), np.int64), np.full(20, 5), np.arange(20) % 5)\n"
            "train_model(ModelConfig(embedding_dim=4, hidden_dim=4, batch_size=8, micro_batch=4, dropout=0.2,\n"
            "            rounds=[Round(epochs=1, lr=0.1)]), s, s, 3, seed=0, threads=1)\n"
            "print('torch._dynamo' in sys.modules, 'sympy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_scales_are_torch_adams_parameter_groups():
    """A learning rate per parameter (discriminative fine-tuning): torch's groups of lr x scale."""
    ours, theirs = _model("classify", False), _model("classify", False)
    named = [(k, p) for k, p in ours.named_parameters() if p.requires_grad]
    scales = [0.3 if k.startswith("lstm") else 1.0 for k, _ in named]
    opt_ours = Adam([p for _, p in named], lr=0.05, scales=scales)
    groups = {}
    for (k, _), p in zip(named, [p for p in theirs.parameters() if p.requires_grad]):
        groups.setdefault(0.3 if k.startswith("lstm") else 1.0, []).append(p)
    opt_theirs = torch.optim.Adam([{"params": ps, "lr": 0.05 * s} for s, ps in groups.items()], lr=0.05)
    for step in range(10):
        for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            _loss(model, step).backward()
            opt.step()
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), k
