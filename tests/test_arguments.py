import numpy as np
import pytest
import torch

from nas_logger.arguments import MAX_STEP, check_step, scalar_value, scalar_values


def test_max_step_is_javascripts_largest_exact_integer():
    assert MAX_STEP == 9007199254740991
    assert float(MAX_STEP) == MAX_STEP and float(MAX_STEP + 1) == float(MAX_STEP + 2)  # 2**53 + 1 is not a double


@pytest.mark.parametrize("step", [0, 7, np.int64(12), MAX_STEP])
def test_steps_up_to_the_limit_are_ints(step):
    assert check_step(step) == int(step) and type(check_step(step)) is int


@pytest.mark.parametrize("step", [MAX_STEP + 1, 2**63, np.uint64(2**63), 10**40])
def test_steps_above_the_limit_name_the_step_and_the_limit(step):
    with pytest.raises(ValueError, match=rf"step {int(step)} is above 2\*\*53 - 1 = 9007199254740991"):
        check_step(step)


@pytest.mark.parametrize("step", [-1, 1.0, True, "3", None, torch.tensor(3)])
def test_non_int_or_negative_steps_are_rejected(step):
    with pytest.raises(ValueError, match="step must be a non-negative int; got"):
        check_step(step)


@pytest.mark.parametrize("value, want", [
    (0.25, 0.25), (3, 3.0), (np.float32(0.5), 0.5), (torch.tensor(1.5), 1.5), (torch.tensor([2.5]), 2.5),
    (np.array([[4.0]]), 4.0), (torch.tensor(7, dtype=torch.int64), 7.0), (float("nan"), float("nan")),
])
def test_real_numbers_and_one_element_tensors_are_floats(value, want):
    got = scalar_value("test_loss", value)
    assert type(got) is float and (got == want or (np.isnan(got) and np.isnan(want)))


@pytest.mark.parametrize("value, message", [
    (torch.ones(3), r"test_loss must be a real number or a one-element tensor; got a Tensor of shape \(3,\)"),
    (torch.zeros(0), r"got a Tensor of shape \(0,\)"),
    (np.ones((2, 2)), r"got a ndarray of shape \(2, 2\) and dtype float64"),
    (torch.tensor(1 + 2j), r"got a Tensor of shape \(\) and dtype torch.complex64"),
    (1 + 2j, "got complex"),
    ("0.5", "got str '0.5'"),
    (None, "got NoneType None"),
])
def test_other_values_are_rejected_naming_the_argument(value, message):
    with pytest.raises(ValueError, match=message):
        scalar_value("test_loss", value)


def test_scalar_values_check_every_argument_and_keep_test_loss_first():
    assert scalar_values(torch.tensor(0.5), {"accuracy": 0.9}) == {"test_loss": 0.5, "accuracy": 0.9}
    assert scalar_values(None, {"lr": 1e-3}) == {"lr": 1e-3}
    with pytest.raises(ValueError, match=r"^accuracy must be a real number .* shape \(4,\)"):
        scalar_values(0.5, {"accuracy": torch.ones(4)})
