"""What differs between kinds of model, written once: one record per kind, and the one place a kind is decided.

    from harness import kinds
    kind = kinds.of_run(settings, config_file)   # a run: its config.json's "kind", which train.py writes
    kind = kinds.of_model(model)                 # a bare .keras file
    kind.answer(runner, photo)                   # predict.py: what the model makes of one photo
    kind.evaluate(run, max_mistakes)             # evaluate.py

A *classifier* gives class probabilities (B, K) for one digit per image; a
*reader* gives per-column probabilities (B, T, K + 1) from which a whole number
is read (models/ctc.py). Each record holds, for its kind: what its data sets
hold, its training objective, whether a plain Keras can rebuild that objective
from model.keras, its serving signature, its evaluation, its robustness judge,
its answer for a photo and its figures. Scripts ask the record; adding a kind
means adding a record (a subclass of Kind and its instance) here. The behaviours themselves live with their concern
(models/, serving/, analysis/), imported when first asked for, so that this
module imports no Keras and predict.py's LiteRT path stays light.
"""

from dataclasses import dataclass

from harness.errors import UserError

CONFIG_KEY = "kind"  # in a run's config.json


@dataclass(frozen=True)
class Kind:
    name: str
    holds: str  # what the data sets of this kind hold, for messages
    does: str  # what a model of this kind does, for messages
    label_rank: int  # 1: one class per image (N,); 2: a number's digits, padded (N, MAX_DIGITS)
    output_rank: int  # of the Keras model's output: (B, K) or (B, T, K + 1)
    serving_outputs: tuple[str, ...]  # the serving signature's outputs (serving/export.py)
    portable_objective: bool  # plain Keras can rebuild its loss, so model.keras keeps the training setup
    greyscale_augment: str  # data.pipeline augmentation for greyscale images ("auto"); colour ones get "street"
    column_head: bool  # its last layers read the trunk's columns, one symbol each (else dense units see the image)
    attribution: str  # visualize.py's whole-model figure of where the answer came from: gradcam or evidence
    probe_target: str  # what visualize.py's linear probes read from each layer
    accuracy_name: str  # what its test accuracy counts, for reports

    # Each kind's behaviours, imported from their homes when first asked for.
    def objective(self) -> tuple:
        """(loss, accuracy metric logged as "accuracy"), made fresh for each compile (models/training.py)."""
        raise NotImplementedError

    def serving_function(self, model):
        """uint8 pixels (B, H, W, C) -> {output name: tensor}, traceable (serving/export.py)."""
        raise NotImplementedError

    def evaluate(self, run, max_mistakes: int):
        """evaluation.json's content and its figures for a run of this kind (analysis/evaluation.py)."""
        raise NotImplementedError

    def judge(self, model, labels):
        """The robustness sweep's judge: changed images -> share right (analysis/robustness.py)."""
        raise NotImplementedError

    def answer(self, runner, photo):
        """(the pixels the model saw (H, W, C), its answer) for one PIL photo (serving/answers.py)."""
        raise NotImplementedError


class Classifier(Kind):
    def objective(self):
        from models.training import classifier_objective
        return classifier_objective()

    def serving_function(self, model):
        from serving.export import classify_function
        return classify_function(model)

    def evaluate(self, run, max_mistakes):
        from analysis.evaluation import evaluate_classifier
        return evaluate_classifier(run, max_mistakes)

    def judge(self, model, labels):
        from analysis.robustness import classifier_judge
        return classifier_judge(model, labels)

    def answer(self, runner, photo):
        from serving.answers import classify
        return classify(runner, photo)


class Reader(Kind):
    def objective(self):
        from models.training import reader_objective
        return reader_objective()

    def serving_function(self, model):
        from serving.export import read_function
        return read_function(model)

    def evaluate(self, run, max_mistakes):
        from analysis.evaluation import evaluate_reader
        return evaluate_reader(run, max_mistakes)

    def judge(self, model, labels):
        from analysis.robustness import reader_judge
        return reader_judge(model, labels)

    def answer(self, runner, photo):
        from serving.answers import read_number
        return read_number(runner, photo)


CLASSIFIER = Classifier(name="classifier", holds="single digits", does="tells single digits apart", label_rank=1,
                        output_rank=2, serving_outputs=("probabilities", "digit"), portable_objective=True,
                        greyscale_augment="handwriting", column_head=False, attribution="gradcam",
                        probe_target="digit", accuracy_name="test accuracy")
READER = Reader(name="reader", holds="whole numbers", does="reads whole numbers", label_rank=2, output_rank=3,
                serving_outputs=("digits", "digit_probabilities", "columns", "probability"),
                portable_objective=False,  # CTC, this project's own code
                greyscale_augment="none", column_head=True, attribution="evidence",
                probe_target="number's first digit", accuracy_name="whole-number test accuracy")
KINDS = {kind.name: kind for kind in (CLASSIFIER, READER)}


def of_run(settings: dict, source) -> Kind:
    """The kind a run's config.json (`source`, read into `settings`) records; a UserError if it records none."""
    name = settings.get(CONFIG_KEY)
    if name not in KINDS:
        raise UserError(f"{source} records the kind {name!r}, not one of {', '.join(KINDS)}; it is damaged or from "
                        f"an earlier version (train the run again).")
    return KINDS[name]


def of_model(model, source="the model") -> Kind:
    """A bare Keras model's kind, from the rank of its output: (B, K) or (B, T, K + 1). source names it in errors."""
    rank = len(model.outputs[0].shape)
    for kind in KINDS.values():
        if kind.output_rank == rank:
            return kind
    raise UserError(f"{source}'s output has {rank} dimensions; a digit model gives (batch, classes) or, reading "
                    f"numbers, (batch, columns, classes + 1).")


def of_outputs(names) -> Kind:
    """The kind of an exported model (SavedModel, LiteRT file), from its serving signature's output names."""
    for kind in KINDS.values():
        if set(kind.serving_outputs) <= set(names):
            return kind
    raise UserError(f"an exported model with the outputs {', '.join(sorted(names))} is none of this project's "
                    f"kinds; rewrite it with python -m serving.export.")


def of_labels(labels) -> Kind:
    """A data set's kind, from the rank of its labels: (N,) classes or (N, MAX_DIGITS) numbers."""
    for kind in KINDS.values():
        if kind.label_rank == labels.ndim:
            return kind
    raise UserError(f"labels of shape {labels.shape} are neither one class per image nor a number per image.")
