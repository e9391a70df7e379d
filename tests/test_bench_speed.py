"""bench/speed.py's comparison table: each recipe's median against its baseline's, computed here by hand."""

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
