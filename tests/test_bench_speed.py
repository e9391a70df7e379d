"""bench/speed.py's comparison table (each recipe's median against its baseline's, computed here by hand) and its
accuracy on the CVL writers."""

from bench.speed import comparison_table


def run(seconds: float, accuracy: float, **extra) -> dict:
    return {"train_seconds": seconds, "test_accuracy": accuracy, "train_images_per_second": 1000.0, **extra}


def test_the_table_gives_each_recipe_its_ratio_of_medians_and_the_baselines_none():
    results = {
        "keras-mlp": [run(100.0, 0.98), run(120.0, 0.98), run(110.0, 0.98)],  # median 110 s
        "ours-mlp": [run(14.0, 0.984, command_seconds=20.0), run(13.0, 0.985, command_seconds=19.0),
                     run(15.0, 0.983, command_seconds=21.0)],  # median 14 s
    }
    rows = {line.split(" | ")[0].strip("| "): line for line in comparison_table(results).splitlines()[2:]}
    assert rows["keras-mlp"].endswith("| baseline |")
    share = 14.0 / 110.0
    assert rows["ours-mlp"].endswith(f"| {share:.3f} (1/{1 / share:.1f}) |")
    assert "98.40 % (98.40, 98.50, 98.30)" in rows["ours-mlp"]
    assert "| 20 |" in rows["ours-mlp"]  # the median whole command


def test_the_table_shows_the_other_writers_accuracy_and_a_dash_where_a_run_has_none():
    results = {"keras-mlp": [run(seconds, 0.98, other_writers_accuracy=share)
                             for seconds, share in ((100.0, 0.85), (120.0, 0.87), (110.0, 0.86))],
               "ours-mlp": [run(14.0, 0.984, other_writers_accuracy=None)]}
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in comparison_table(results).splitlines()[2:]}
    assert rows["keras-mlp"][4] == "86.00 % (85.00, 87.00, 86.00)"
    assert rows["ours-mlp"][4] == "-"


def test_other_writers_accuracy_counts_the_cvl_test_digits_a_model_gets_right(tmp_path):
    """A stand-in model that gives the true digit for the first third of the test images and a wrong one after."""
    import numpy as np

    from bench.speed import other_writers_accuracy
    from data.cvl import load_cvl_digits
    from tests.data.test_cvl import write_cvl

    assert other_writers_accuracy(None, tmp_path) is None  # no cvl-digits.npz: nothing to measure
    write_cvl(tmp_path, writers_test=(1, 1, 1, 2, 2, 2, 3, 3, 3))
    truth = load_cvl_digits(tmp_path).y_test.astype(int)
    answers = np.eye(10, dtype="float32")[(truth + (np.arange(len(truth)) >= 3)) % 10]  # (9, 10), 3 right

    class Answers:
        def __call__(self, images, training):
            images = np.asarray(images)
            assert not training and images.shape == (9, 28, 28, 1) and images.dtype == np.float32
            assert 0 <= images.min() and images.max() <= 1
            return answers

    assert other_writers_accuracy(Answers(), tmp_path) == 3 / 9


def test_a_recipe_whose_baseline_was_not_run_has_no_ratio_and_is_not_called_a_baseline():
    table = comparison_table({"ours-convnet": [run(30.0, 0.994, command_seconds=40.0)]})
    assert table.splitlines()[2].endswith("| - (keras-convnet not run) |")
